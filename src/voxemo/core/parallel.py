"""Process pools: a map with a progress bar (feature extraction, analysis, training), and what keeps a pool's
workers from outliving the process they work for.

A worker ends as soon as that process ends, however it ends (``kill -9`` included): :func:`exit_with_parent` in
a worker the process started itself, :func:`exit_when_closed` with a :func:`lifeline` in a worker started by a
fork server (whose own parent outlives the process). :func:`pmap` also stops its workers at once when it is
interrupted (Ctrl-C, SIGTERM) instead of waiting for their tasks, which can take minutes.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

import threadpoolctl
from tqdm import tqdm

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.context import BaseContext
    from types import FrameType

A = TypeVar("A")

R = TypeVar("R")

#: ``prctl`` option that asks Linux for a signal when the calling process' parent ends (``<linux/prctl.h>``)
_PR_SET_PDEATHSIG = 1

#: seconds between two looks at the parent where the kernel does not signal its end
_POLL = 0.5

#: seconds a worker gets to end after SIGTERM before it is killed
_TERMINATE_GRACE = 5.0


def limit_threads() -> None:
    # One BLAS/OpenMP thread per worker: the pool already uses every core. Environment variables are read only
    # when a library loads, which already happened in a forked worker, so limit the live thread pools too.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    threadpoolctl.threadpool_limits(1)


def exit_with_parent(parent: int) -> None:
    """End this process (a worker) as soon as its parent process ``parent`` ends, however it ends.

    On Linux the kernel kills it (``PR_SET_PDEATHSIG``) the moment the parent ends; elsewhere a daemon thread
    notices within half a second that it has been handed to another parent (``os.getppid()`` changed). Call it
    first thing in the worker, with the pid the parent passed down (``os.getpid()`` there).
    """
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no usable libc: the thread below still notices
            pass
    if os.getppid() != parent:  # the parent ended before the request above was made
        os._exit(1)
    threading.Thread(target=_poll_parent, args=(parent,), daemon=True, name="voxemo-parent-watch").start()


def _poll_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_POLL)
    os._exit(1)


def lifeline(ctx: BaseContext) -> tuple[Connection, Connection]:
    """``(reader, writer)``: a pipe that tells workers the process that made it has ended.

    Pass ``reader`` to each worker (as an initializer argument), which calls :func:`exit_when_closed` on it; keep
    ``writer`` open and unused while the pool runs, then close both. The kernel closes ``writer`` when this
    process ends, even by ``kill -9`` and while it stays an unreaped zombie (which ``os.kill(pid, 0)`` still
    finds), and every worker's read then ends.
    """
    return ctx.Pipe(duplex=False)


def exit_when_closed(reader: Connection) -> None:
    """End this process (a worker) as soon as the writing end of ``reader``, a :func:`lifeline`, is closed."""
    threading.Thread(target=_wait_for_end, args=(reader,), daemon=True, name="voxemo-parent-watch").start()


def _wait_for_end(reader: Connection) -> None:
    try:
        while True:
            reader.recv_bytes()
    except (EOFError, OSError):
        os._exit(1)


def init_worker(parent: int | None, parent_lifeline: Connection | None) -> None:
    """Set up a pool worker: Ctrl-C left to the parent, SIGTERM ends it, it ends with the process it works for
    (:func:`exit_with_parent` given that process' pid, :func:`exit_when_closed` given a :func:`lifeline`), one
    BLAS thread."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the pool
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler, inherited through fork
    if parent is not None:
        exit_with_parent(parent)
    if parent_lifeline is not None:
        exit_when_closed(parent_lifeline)
    limit_threads()


@contextmanager
def _terminate_raises() -> Iterator[None]:
    """While a pool runs, SIGTERM raises ``SystemExit(128 + SIGTERM)`` the way Ctrl-C raises KeyboardInterrupt,
    so that the pool's workers are stopped and the caller's clean-up runs before the process ends.

    Only in the main thread (the only one that may set handlers), and only where SIGTERM has its default
    action: a program's own handler (a web server's, say) stays in charge.
    """
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """End a pool's workers now, mid-task: ``shutdown`` would wait for their tasks (a training: minutes)."""
    # The executor has no public way to reach its workers before Python 3.14 (terminate_workers); _processes has
    # been there since 3.2, and is None once shut down, so it is read first.
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        p.terminate()
    deadline = time.monotonic() + _TERMINATE_GRACE
    for p in processes:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join(1.0)


def pmap(fn: Callable[[A], R], items: Sequence[A], *, jobs: int = 0, desc: str = "", progress: bool = True,
         chunksize: int = 8, unit: str = "clip", start_method: str = "fork") -> list[R]:
    """``[fn(x) for x in items]`` in ``jobs`` processes (0 = all cores), in input order, with a tqdm bar.

    ``fn`` must be a module-level function and should return errors as values rather than raise them, so
    that one bad item does not stop the batch. ``start_method="spawn"`` is for work that uses torch, whose
    OpenMP thread pool must not be inherited through fork.

    The workers end with this process, however it ends, and are stopped at once (not after their current task)
    when the map is interrupted: Ctrl-C (KeyboardInterrupt), SIGTERM (``SystemExit(143)`` when called from the
    main thread of a process with no SIGTERM handler of its own), or any other exception.
    """
    jobs = jobs or os.cpu_count() or 1
    bar = tqdm(total=len(items), desc=desc, unit=unit, disable=not progress, leave=False)
    results: list[R] = []
    try:
        if jobs == 1 or len(items) < 2 * chunksize or len(items) == 1:
            for item in items:
                results.append(fn(item))
                bar.update()
            return results
        # fork starts workers fast and needs no __main__ guard in the caller's script; workers never touch
        # torch, so its thread pool in the parent does not matter.
        method = start_method if start_method in multiprocessing.get_all_start_methods() else "spawn"
        ctx = multiprocessing.get_context(method)
        # fork and spawn make the workers this process' children; a fork server's workers are its own
        reader, writer = lifeline(ctx)
        direct = method in ("fork", "spawn")
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=init_worker,
                                   initargs=(os.getpid(), None) if direct else (None, reader))
        with _terminate_raises():
            try:
                for res in pool.map(fn, items, chunksize=chunksize):
                    results.append(res)
                    bar.update()
                pool.shutdown()
            except BaseException:
                _stop_workers(pool)
                raise
            finally:
                reader.close()
                writer.close()
        return results
    finally:
        bar.close()


def worker_count(n_tasks: int, jobs: int = 0) -> int:
    """How many worker processes to run ``n_tasks`` torch trainings in: one per core (``jobs=0``) or ``jobs``.

    Small CNNs use two single-threaded processes far better than one two-threaded one, so tasks run side by
    side; each keeps one torch thread, so that its numbers do not depend on the machine's core count.
    """
    return max(1, min(n_tasks, jobs or os.cpu_count() or 1))
