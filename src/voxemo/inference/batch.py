"""Prediction over many files: inputs (files, folders, manifests), worker processes, streamed and resumable output.

:func:`predict_batch` is what ``voxemo predict`` runs. Results come out in input order, one line per input as
soon as it and every input before it are done, and each line is flushed, so an interrupted run leaves a valid
prefix. With ``resume=True`` the inputs already in the output file are skipped: a last line cut off by a kill is
dropped and redone; inputs recorded as errors are not retried (delete their lines to retry them).

Memory stays flat for any number of inputs: inputs are expanded lazily (a folder's sorted file list is the
largest thing held), manifests are read line by line, and at most ``16 * jobs`` files are in flight.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from itertools import chain, islice
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from voxemo.core.errors import ConfigError, VoxemoError
from voxemo.core.extras import require
from voxemo.core.parallel import init_worker, lifeline
from voxemo.inference.classifier import Classifier
from voxemo.inference.distributed import ray_stream
from voxemo.inference.loading import ModelRef, resolve_model
from voxemo.inference.output import LINE_FORMATS, open_output
from voxemo.inference.parquet import ParquetWriter, is_parquet
from voxemo.inference.results import FileResult, NoSpeech, Uncertain
from voxemo.inference.selfadapt import AdaptOptions, adapted_groups
from voxemo.inference.worker import Item, WorkerSettings, predict_items, result_of, worker_reference
from voxemo.io.discovery import expand_inputs

if TYPE_CHECKING:
    from multiprocessing.connection import Connection


FORMATS = (*LINE_FORMATS, "parquet")

#: what runs the workers: this machine's processes, or a Ray cluster (:mod:`voxemo.inference.distributed`)
ENGINES = ("local", "ray")

#: below this many inputs one process is faster: a worker takes 2-3 s to start (it imports torch and loads the
#: model), about as long as one process takes for 250-300 three-second clips
MIN_PARALLEL = 256

#: files per task sent to a worker: one file (a few ms of work) per task would spend a good part of the parent's
#: time on inter-process traffic
CHUNK = 8

#: tasks in flight per worker: enough to keep workers busy while the oldest result is awaited, bounded for memory
IN_FLIGHT_PER_JOB = 2

# ---- workers ---------------------------------------------------------------------------------------------------
# Each worker process loads the model once, in its initializer, and keeps it for every file it is sent.
_worker_model: Classifier | None = None


def _init_worker(settings: WorkerSettings, parent_lifeline: Connection) -> None:
    global _worker_model
    # A worker's own parent is the fork server, which outlives the process that started the pool (its workers keep
    # it going), so the end of that process, kill -9 included, comes through the lifeline pipe.
    init_worker(None, parent_lifeline)
    _worker_model = settings.load()


def _predict_in_worker(items: list[Item]) -> list[FileResult]:
    assert _worker_model is not None, "worker used before _init_worker"
    return predict_items(_worker_model, items)


def predict_stream(items: Iterable[tuple[str, str | None]], clf: Classifier, *, model: str | None = None,
                   backend: str = "auto", jobs: int = 1, help_while_starting: bool = True) -> Iterator[FileResult]:
    """One typed result per ``(path, error)`` item from :func:`expand_inputs`, in input order, as they finish.

    Parameters
    ----------
    items : iterable of (str, str or None)
    clf : Classifier
        The loaded model; used directly with one job or few inputs.
    model, backend :
        What each worker process passes to :func:`voxemo.inference.loading.load_model` (the same model as ``clf``).
    jobs : int
        Worker processes (0 = all cores), each with one thread.
    help_while_starting : bool
        Predict the first inputs in this process until a worker is ready.
    """
    jobs = jobs or os.cpu_count() or 1
    it = iter(items)
    head = list(islice(it, MIN_PARALLEL))
    if jobs == 1 or len(head) < MIN_PARALLEL:
        for path, error in chain(head, it):
            yield result_of(clf, path, error)
        return
    settings = WorkerSettings(model, clf.backend or backend, clf.min_confidence)
    ctx = _worker_context(clf.backend)
    reader, writer = lifeline(ctx)
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker,
                               initargs=(settings, reader))
    pending: deque[tuple[str, Future[list[FileResult]]]] = deque()
    window = IN_FLIGHT_PER_JOB * jobs
    rest = chain(head, it)
    try:
        # Workers need a second or more to start (the fork server's imports, then the model), and starting them
        # blocks the caller, so a thread does it; meanwhile this process predicts the first inputs itself, so that
        # the first lines come at once and more jobs are never much slower than one.
        with ThreadPoolExecutor(1) as starter:
            ready = starter.submit(lambda: pool.submit(_worker_ready).result())
            while help_while_starting and not ready.done() and (chunk := list(islice(rest, CHUNK))):
                for path, error in chunk:
                    yield result_of(clf, path, error)
        while chunk := list(islice(rest, CHUNK)):
            pending.append((chunk[0][0], _submit(pool, chunk)))
            while len(pending) >= window:
                yield from _results(*pending.popleft())
        while pending:
            yield from _results(*pending.popleft())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        reader.close()
        writer.close()


def _worker_context(backend: str) -> Any:
    """How workers start: never by forking this process, whose torch may have started its OpenMP threads (a
    forked child can hang in them). A fork server imports voxemo and the backend's runtime once, before any of
    that, and forks each worker from there: workers start in a fraction of a second instead of each importing
    everything again (2-3 s of CPU apiece). Where there is no fork server (Windows), workers are spawned."""

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    runtime = "voxemo.inference.onnx_backend" if backend == "onnx" else "voxemo.nn.train"
    ctx.set_forkserver_preload(["voxemo.inference.batch", "voxemo.inference.loading", runtime])
    return ctx


def _worker_ready() -> bool:
    return _worker_model is not None


def _submit(pool: ProcessPoolExecutor, chunk: list[tuple[str, str | None]]) -> Future[list[FileResult]]:
    try:
        return pool.submit(_predict_in_worker, chunk)
    except BrokenProcessPool:
        raise _died(chunk[0][0]) from None


def _results(path: str, future: Future[list[FileResult]]) -> list[FileResult]:
    try:
        return future.result()
    except BrokenProcessPool:
        raise _died(path) from None


def _died(path: str) -> VoxemoError:
    if _unguarded_script() is not None:
        return VoxemoError(f"a worker process died at start: {_unguarded_script()} calls voxemo at its top level, "
                           "and each worker process imports it again; put the call under "
                           "`if __name__ == \"__main__\":`, or pass jobs=1")
    return VoxemoError(f"a worker process died (killed, or out of memory?) on the {CHUNK} files from {path}; "
                       "rerun with --output FILE --resume to go on from there")


def _unguarded_script() -> str | None:
    """The script this process runs when it has no ``if __name__ == "__main__":`` (a worker that imports it runs its
    top level again, and fails), else None."""

    path = getattr(sys.modules.get("__main__"), "__file__", None)
    if not path or not str(path).endswith(".py"):
        return None
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return None
    return None if "__main__" in text else str(path)


# ---- output ----------------------------------------------------------------------------------------------------
@dataclass
class BatchSummary:
    """Counts of a :func:`predict_batch` run."""

    predicted: int = 0
    failed: int = 0
    skipped: int = 0
    skipped_failed: int = 0
    no_speech: int = 0
    uncertain: int = 0

    @property
    def any_failed(self) -> bool:
        """Whether any input failed, in this run or (skipped on resume) in the one before."""
        return bool(self.failed or self.skipped_failed)

    def count(self, result: FileResult) -> None:
        """Count one input's result."""
        self.predicted += 1
        self.failed += result.failed
        self.no_speech += isinstance(result, NoSpeech)
        self.uncertain += isinstance(result, Uncertain)


def predict_batch(paths: Iterable[str | os.PathLike[str]], *, model: ModelRef = None, backend: str = "auto",
                  fmt: str = "json", output: str | os.PathLike[str] | None = None, resume: bool = False,
                  jobs: int = 0, out: IO[str] | None = None, progress: bool = False,
                  min_confidence: float = 0.0, engine: str = "local", address: str | None = None,
                  adapt: AdaptOptions | None = None) -> BatchSummary:
    """Predict every input and write one line per input as it is done.

    Parameters
    ----------
    paths : iterable of path-like
        Audio files, folders (walked recursively) and manifests (``.jsonl``/``.csv``).
    model : Classifier, path-like, shipped name or None
        A loaded classifier (e.g. ``clf.adapt(...)``'s, used as it is: workers load a copy saved for the run when it
        lives in memory only), or what :func:`voxemo.inference.loading.load_model` takes.
    backend :
        As for :func:`voxemo.inference.loading.load_model`, when ``model`` is not a classifier.
    fmt : {"json", "csv", "text", "parquet"}
        JSON lines, CSV with a header (path, emotion, confidence, one column per class, error, speech, reason),
        or ``path<TAB>emotion<TAB>confidence`` with errors on stderr (``no speech`` or ``uncertain`` in place
        of the emotion), or a Parquet folder with the CSV's columns.
    output : path-like, optional
        File to write (default: ``out``, i.e. stdout). Without ``resume`` it is overwritten.
    resume : bool
        Append to ``output``, skipping every input already in it (including recorded errors).
    jobs : int
        Worker processes, 0 = all cores.
    out : text stream, optional
        Where to write without ``output`` (default ``sys.stdout``).
    progress : bool
        A progress bar on stderr (only when writing to a file).
    min_confidence : float
        Speech whose top probability is below this is reported as uncertain, with no emotion (0 = never).
    engine : {"local", "ray"}
        Worker processes on this machine, or Ray actors (:func:`voxemo.inference.distributed.ray_stream`; the
        ``ray`` extra): ``jobs`` actors (0 = one per free CPU of the cluster), on the cluster at ``address`` (else
        ``$RAY_ADDRESS``, else a Ray runtime started on this machine). Output, order and ``resume`` are the same.
    adapt : AdaptOptions, optional
        First adapt the model without labels to the speech of all the inputs
        (:func:`~voxemo.inference.selfadapt.adapted_groups`: a first reading of every input, in ``jobs`` processes),
        then predict them with it. With ``adapt.by`` the inputs come out group by group: the pooled model's first,
        then each group's, each in input order. The adaptation is repeated in full on ``resume``, so the model is
        the same and the run goes on where it stopped.

    ``fmt="parquet"`` (or an ``output`` ending in ``.parquet`` with the default ``fmt``) writes a Parquet dataset
    folder (:mod:`voxemo.inference.parquet`; needs pyarrow, in the ``ray`` extra).

    Inputs without speech are results, not failures: ``{"path", "speech": false, "emotion": null, "reason"}``.
    """
    fmt = _check_batch_args(fmt, output, resume, jobs, min_confidence, engine)
    clf = resolve_model(model, backend)  # here first, so a bad model is one error before any work starts
    clf.min_confidence = min_confidence
    paths = list(paths) if adapt else paths
    items: Iterable[tuple[str, str | None]] = expand_inputs(paths)
    plan: list[tuple[ModelRef, Classifier, Iterable[tuple[str, str | None]]]] = [(model, clf, items)]
    if adapt is not None:
        plan = [(c, c, group) for c, group in adapted_groups(list(paths), list(items), clf, adapt, jobs=jobs,
                                                              progress=progress)]
    summary = BatchSummary()
    writer, finished, handle = open_output(clf, fmt, output, resume, out or sys.stdout)
    bar = _bar(progress and output is not None, len(finished))
    try:
        for ref, each, group in plan:
            each.min_confidence = min_confidence
            for result in _predict(_skip(group, finished, summary), ref, each, backend, jobs, engine, address):
                summary.count(result)
                writer.write(result)
                bar.update()
        bar.close()
    finally:
        if handle is not None:
            handle.close()
        if isinstance(writer, ParquetWriter):
            writer.close()  # what is done so far, also when stopped: --resume goes on after it
    return summary


def _predict(items: Iterable[tuple[str, str | None]], model: ModelRef, clf: Classifier, backend: str, jobs: int,
             engine: str, address: str | None) -> Iterator[FileResult]:
    """The results of ``items`` by ``clf`` (which is ``model`` resolved), in input order, from ``engine``'s
    workers."""
    with worker_reference(model) as reference:
        if engine == "ray":

            settings = WorkerSettings(reference, clf.backend or backend, clf.min_confidence)
            yield from ray_stream(items, settings, address=address, jobs=jobs, clf=clf)
        else:
            yield from predict_stream(items, clf, model=reference, backend=backend, jobs=jobs)


def _check_batch_args(fmt: str, output: str | os.PathLike[str] | None, resume: bool, jobs: int,
                      min_confidence: float, engine: str) -> str:
    """:func:`predict_batch`'s arguments checked before anything loads; the output format (Parquet for a
    ``.parquet`` output with the default format)."""
    if fmt == "json" and is_parquet(output):  # the default format, and a name that says Parquet
        fmt = "parquet"
    if resume and output is None:
        raise ConfigError("--resume needs --output FILE: it continues the results already written there")
    if output is not None and fmt == "text":
        raise ConfigError("--output writes JSON lines, CSV or Parquet: add --json or --csv, or name a .parquet")
    if fmt == "parquet" and output is None:
        raise ConfigError("Parquet results need --output NAME.parquet (a folder of part files)")
    if jobs < 0:
        raise ConfigError(f"jobs={jobs} must be >= 0 (0 = all cores)")
    if not 0.0 <= min_confidence <= 1.0:
        raise ConfigError(f"min_confidence={min_confidence!r} must be between 0 and 1")
    if engine not in ENGINES:
        raise ConfigError(f"engine={engine!r} is not one of {', '.join(ENGINES)}")
    if engine == "ray":  # name the missing extra before the model loads
        require("ray", "voxemo predict --engine ray")
    if fmt == "parquet":
        require("pyarrow", "Parquet output")
    return fmt


def _skip(items: Iterable[tuple[str, str | None]], finished: dict[str, bool],
          summary: BatchSummary) -> Iterator[tuple[str, str | None]]:
    """``items`` less those already in the output (``resume``), counted in ``summary``."""
    if not finished:
        yield from items
        return
    for path, error in items:
        if path in finished:
            summary.skipped += 1
            summary.skipped_failed += finished[path]
        else:
            yield path, error


def _bar(enabled: bool, initial: int) -> Any:
    from tqdm import tqdm

    return tqdm(desc="predict", unit="file", initial=initial, disable=not enabled, leave=False, file=sys.stderr)
