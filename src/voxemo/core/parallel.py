"""A process pool map with a progress bar, shared by feature extraction and analysis."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

import threadpoolctl
from tqdm import tqdm

A = TypeVar("A")

R = TypeVar("R")


def limit_threads() -> None:
    # One BLAS/OpenMP thread per worker: the pool already uses every core. Environment variables are read only
    # when a library loads, which already happened in a forked worker, so limit the live thread pools too.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    threadpoolctl.threadpool_limits(1)


def pmap(fn: Callable[[A], R], items: Sequence[A], *, jobs: int = 0, desc: str = "", progress: bool = True,
         chunksize: int = 8, unit: str = "clip", start_method: str = "fork") -> list[R]:
    """``[fn(x) for x in items]`` in ``jobs`` processes (0 = all cores), in input order, with a tqdm bar.

    ``fn`` must be a module-level function and should return errors as values rather than raise them, so
    that one bad item does not stop the batch. ``start_method="spawn"`` is for work that uses torch, whose
    OpenMP thread pool must not be inherited through fork.
    """
    jobs = jobs or os.cpu_count() or 1
    bar = tqdm(total=len(items), desc=desc, unit=unit, disable=not progress, leave=False)
    results: list[R] = []
    if jobs == 1 or len(items) < 2 * chunksize or len(items) == 1:
        for item in items:
            results.append(fn(item))
            bar.update()
    else:
        # fork starts workers fast and needs no __main__ guard in the caller's script; workers never touch
        # torch, so its thread pool in the parent does not matter.
        method = start_method if start_method in multiprocessing.get_all_start_methods() else "spawn"
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context(method),
                                 initializer=limit_threads) as pool:
            for res in pool.map(fn, items, chunksize=chunksize):
                results.append(res)
                bar.update()
    bar.close()
    return results


def worker_count(n_tasks: int, jobs: int = 0) -> int:
    """How many worker processes to run ``n_tasks`` torch trainings in: one per core (``jobs=0``) or ``jobs``.

    Small CNNs use two single-threaded processes far better than one two-threaded one, so tasks run side by
    side; each keeps one torch thread, so that its numbers do not depend on the machine's core count.
    """
    return max(1, min(n_tasks, jobs or os.cpu_count() or 1))
