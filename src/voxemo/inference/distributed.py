"""Batch prediction on a Ray cluster: what ``voxemo predict --engine ray`` runs.

:func:`ray_stream` is the Ray twin of :func:`voxemo.inference.batch.predict_stream`: one typed result per input, in
input order, so :func:`~voxemo.inference.batch.predict_batch` writes, resumes and counts exactly as it does with
local processes. Each Ray actor (one CPU) builds its classifier once from the same
:class:`~voxemo.inference.worker.WorkerSettings` the local workers get, and runs the same
:func:`~voxemo.inference.worker.predict_items` on chunks of :data:`CHUNK` inputs.

The driver lists inputs lazily and keeps at most :data:`IN_FLIGHT_PER_ACTOR` chunks per actor in flight, so its
memory is flat for any number of inputs, and its work per input (send a path, receive a result, write a line)
does not depend on how many workers there are. Results are written only by the driver, once per chunk, in order:

- a worker that dies (killed, out of memory, its node lost) is restarted by Ray and its chunks are run again;
  the driver receives each chunk's results once, so nothing is lost and nothing is written twice;
- a chunk that kills its worker on every try is retried file by file, and only a file that still kills a worker
  becomes an error row: one bad file never fails the job;
- a killed driver stops the job (Ray ends its actors); ``--resume`` goes on from the output written so far.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from itertools import islice
from typing import TYPE_CHECKING, Any

from voxemo.core.cluster import ray_runtime
from voxemo.core.errors import VoxemoError
from voxemo.core.parallel import limit_threads
from voxemo.inference.results import FileFailure, FileResult
from voxemo.inference.worker import Item, WorkerSettings, predict_items

if TYPE_CHECKING:
    from voxemo.inference.classifier import Classifier

#: inputs per actor call: a few hundred ms of work, so Ray's per-call cost (about a millisecond) is noise
CHUNK = 32

#: chunks in flight per actor: one running, one waiting, so an actor never idles while the driver writes
IN_FLIGHT_PER_ACTOR = 2

#: tries of a chunk on restarted actors before it is retried file by file
TASK_RETRIES = 2


class BatchActor:
    """The body of a Ray actor: one classifier, loaded once, for every chunk it is sent.

    It works in the driver's folder where that folder exists on its node (a shared file system), so that relative
    input and model paths mean what they mean to the driver, and results name the files as the driver wrote them.
    """

    def __init__(self, settings: WorkerSettings, cwd: str | None = None) -> None:
        if cwd and os.path.isdir(cwd):
            os.chdir(cwd)
        limit_threads()
        self.clf = settings.load()

    def predict(self, items: Sequence[Item]) -> list[FileResult]:
        return predict_items(self.clf, items)

    def pid(self) -> int:
        """The worker's process id (tests kill it)."""
        return os.getpid()


def ray_stream(items: Iterable[Item], settings: WorkerSettings, *, address: str | None = None, jobs: int = 0,
               chunk: int | None = None, clf: Classifier | None = None) -> Iterator[FileResult]:
    """One typed result per ``(path, error)`` item from :func:`~voxemo.io.discovery.expand_inputs`, in input order.

    Parameters
    ----------
    items : iterable of (str, str or None)
        Consumed lazily: at most ``IN_FLIGHT_PER_ACTOR * actors * chunk`` inputs are held at a time.
    settings : WorkerSettings
        What each actor builds its classifier from.
    address : str, optional
        Ray cluster to use (else ``$RAY_ADDRESS``, else a Ray runtime started on this machine for the run).
    jobs : int
        Actors, one CPU each (0 = one per CPU of the cluster that is free when the run starts).
    chunk : int, optional
        Inputs per actor call (default :data:`CHUNK`).
    clf : Classifier, optional
        The classifier ``settings`` describe, already loaded here: the driver predicts the first inputs with it
        while Ray starts (seconds for a runtime of its own), as the local engine does while its workers start.
    """
    chunk = chunk or CHUNK
    rest = iter(items)
    with ExitStack() as stack, ThreadPoolExecutor(1, thread_name_prefix="voxemo-ray-start") as starter:
        started = starter.submit(_start, stack, address, jobs, settings)
        while clf is not None and not started.done() and (batch := list(islice(rest, chunk))):
            yield from predict_items(clf, batch)
        ray, actors = started.result()
        n = len(actors)
        # a free slot is an actor index: each actor has IN_FLIGHT_PER_ACTOR; a chunk takes one, its result gives it
        # back, so the driver's work per chunk is the same for 2 actors or 2,000
        free = deque(k for _ in range(IN_FLIGHT_PER_ACTOR) for k in range(n))
        pending: deque[tuple[list[Item], int, Any]] = deque()
        while True:
            while free and (batch := list(islice(rest, chunk))):
                k = free.popleft()
                pending.append((batch, k, actors[k].predict.remote(batch)))
            if not pending:
                break
            batch, k, ref = pending.popleft()
            free.append(k)
            yield from _collect(ray, batch, ref, actors[k])


def _start(stack: ExitStack, address: str | None, jobs: int, settings: WorkerSettings) -> tuple[Any, list[Any]]:
    """Connect to Ray (or start it), start the actors and wait until they are ready; ``stack`` ends both."""
    ray = stack.enter_context(ray_runtime(address, jobs, purpose="voxemo predict --engine ray"))
    # the CPUs free now, not the cluster's total: an actor waiting for a CPU that another job holds would stall the
    # results behind its chunks
    n = jobs or max(1, int(ray.available_resources().get("CPU", 1)))
    remote = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=TASK_RETRIES)(BatchActor)
    actors = [remote.remote(settings, os.getcwd()) for _ in range(n)]
    stack.callback(lambda: [ray.kill(actor) for actor in actors])
    _wait_ready(ray, actors)
    return ray, actors


def _wait_ready(ray: Any, actors: list[Any]) -> None:
    """Raise one clear error if the actors cannot start (voxemo or the model missing on a node), instead of an
    error row for every input."""
    try:
        ray.get([a.pid.remote() for a in actors])
    except ray.exceptions.RayActorError as exc:
        cause = getattr(exc, "error_msg", None) or str(exc)
        raise VoxemoError("Ray workers could not start (is voxemo, with its model, installed on every node?): "
                          f"{cause.strip().splitlines()[-1]}") from None


def _collect(ray: Any, batch: list[Item], ref: Any, actor: Any) -> list[FileResult]:
    died = (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError, ray.exceptions.OutOfMemoryError)
    try:
        results: list[FileResult] = ray.get(ref)
        return results
    except died:
        pass
    # the chunk killed its worker on every try: one file at a time, so that only a file that kills a worker by
    # itself is an error row
    out: list[FileResult] = []
    for item in batch:
        try:
            out += ray.get(actor.predict.remote([item]))
        except died as exc:
            out.append(FileFailure(item[0], f"{item[0]}: the Ray worker died on this file {TASK_RETRIES + 1} times "
                                            f"({type(exc).__name__}: killed, out of memory, or a crash in a decoder)"))
    return out
