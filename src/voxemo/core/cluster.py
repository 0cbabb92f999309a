"""A Ray runtime for the commands that can run on a cluster (``--engine ray``): connect to one, or start one on this
machine, and give it back when done.

Ray is an optional engine (the ``ray`` extra) and is imported only here and only when asked for. The SIMD-kernel
pins of :mod:`voxemo.core.reproducible` travel to every worker of the cluster as the job's environment, so a
worker on another host computes what a local process computes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from voxemo.core.extras import require
from voxemo.core.reproducible import PINS


@contextmanager
def ray_runtime(address: str | None = None, num_cpus: int = 0, *,
                purpose: str = "--engine ray") -> Iterator[ModuleType]:
    """Yield the ``ray`` module with a runtime to use: the one this process is already connected to, else the
    cluster at ``address`` (else ``$RAY_ADDRESS``), else a new one on this machine with ``num_cpus`` CPUs
    (0 = all cores). A runtime started here is shut down on exit; one that was already there is left running.

    Raises
    ------
    MissingExtraError
        Ray is not installed (the message names the ``ray`` extra); ``purpose`` starts the message.
    """
    ray = require("ray", purpose)
    if ray.is_initialized():
        yield ray
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    env = {k: os.environ[k] for k in PINS if k in os.environ}
    options = {"runtime_env": {"env_vars": env}, "logging_level": logging.WARNING, "log_to_driver": True}
    if address:
        ray.init(address=address, **options)
    else:
        ray.init(num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False, **options)
    try:
        yield ray
    finally:
        ray.shutdown()
