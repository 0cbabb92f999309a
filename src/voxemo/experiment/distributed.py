"""Cross-validation folds on a Ray cluster: what ``voxemo evaluate --engine ray`` runs.

:func:`ray_fold_runner` gives :func:`voxemo.experiment.evaluate.evaluate` (and everything built on it: the eGeMAPS
baseline, the ablation grid in ``experiments/``) a way to run its folds as Ray tasks instead of local processes.
Each fold is one task that asks for as many CPUs as it trains with threads. The features are computed once, by
the driver (through the feature cache), and put into Ray's object store once: a clip that several folds train or
test on is stored once and read by every task that needs it, not copied into each fold's job.

Results are the local run's, bit for bit, for the same seed: a fold task runs the same ``fit`` on the same
:class:`~voxemo.experiment.results.FoldJob` with the same single-threaded BLAS
(:func:`voxemo.core.parallel.limit_threads`), torch thread count and kernel pins (:mod:`voxemo.core.cluster` sends
them to every worker), and seeds come from the config, never from the worker. A task whose worker dies is run again
by Ray (:data:`FOLD_RETRIES`); a fold is pure, so a rerun gives the same result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from voxemo.core.cluster import ray_runtime
from voxemo.core.parallel import limit_threads
from voxemo.experiment.results import FoldJob, FoldResult, FoldRunner

#: reruns of a fold whose worker died (killed, out of memory, node lost)
FOLD_RETRIES = 3


@dataclass(frozen=True)
class _SharedFold:
    """A fold job without its clips: indices into the run's one shared list of clips."""

    job: FoldJob
    train: tuple[int, ...]
    val: tuple[int, ...]
    test: tuple[int, ...]
    aug: tuple[tuple[int, ...], ...] | None


def share_clips(jobs: Sequence[FoldJob]) -> tuple[list[Any], list[_SharedFold]]:
    """Every distinct clip object of ``jobs`` once, and each job as indices into that list."""
    table: list[Any] = []
    where: dict[int, int] = {}

    def index(items: Sequence[Any]) -> tuple[int, ...]:
        out = []
        for item in items:
            if id(item) not in where:
                where[id(item)] = len(table)
                table.append(item)
            out.append(where[id(item)])
        return tuple(out)

    shared = [_SharedFold(replace(job, train_x=(), val_x=(), test_x=(), train_aug=None), index(job.train_x),
                          index(job.val_x), index(job.test_x),
                          tuple(index(a) for a in job.train_aug) if job.train_aug is not None else None)
              for job in jobs]
    return table, shared


def rebuild(table: Sequence[Any], fold: _SharedFold) -> FoldJob:
    """The :class:`FoldJob` that :func:`share_clips` took apart (arrays from the object store are read-only views;
    they are copied, as a local worker receives its own copy)."""
    take = lambda ix: [np.array(table[i]) if isinstance(table[i], np.ndarray) else table[i] for i in ix]  # noqa: E731
    aug = [take(a) for a in fold.aug] if fold.aug is not None else None
    return replace(fold.job, train_x=take(fold.train), val_x=take(fold.val), test_x=take(fold.test), train_aug=aug)


def _fit_shared(fit: Callable[[FoldJob], FoldResult], table: Sequence[Any], fold: _SharedFold) -> FoldResult:
    limit_threads()  # as a local pool worker does: one BLAS thread, the job's own torch threads
    return fit(rebuild(table, fold))


def ray_fold_runner(address: str | None = None) -> FoldRunner:
    """A :data:`FoldRunner` that runs each fold as a Ray task on the cluster at ``address`` (else
    ``$RAY_ADDRESS``, else a Ray runtime on this machine), with ``job.threads`` CPUs."""

    def run(fit: Callable[[FoldJob], FoldResult], jobs: Sequence[FoldJob]) -> list[FoldResult]:
        with ray_runtime(address, purpose="voxemo evaluate --engine ray") as ray:
            table, shared = share_clips(jobs)
            ref = ray.put(table)  # once: every fold task reads the same stored clips
            task = ray.remote(_fit_shared)
            refs = [task.options(num_cpus=max(1, fold.job.threads), max_retries=FOLD_RETRIES).remote(fit, ref, fold)
                    for fold in shared]
            results: list[FoldResult] = ray.get(refs)
            return results

    return run
