"""File mechanics every floor shares: atomic writes and content digests.

Every file voxemo writes that another run may read (cache entries, model files, manifests, reports' CSV) goes
through :func:`atomic_path`: it is written under a temporary name beside its target and renamed into place, so a
killed run leaves either the old file or the new one, never a partial one.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``, on failure remove it.

    ``suffix`` ends the temporary name (e.g. ``".tmp.npy"`` for :func:`numpy.save`, which appends ``.npy``
    otherwise). The name holds the process id, so parallel writers of the same entry never share a file.
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}{suffix}")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object]) -> Path:
    """Write a file atomically: ``write`` receives the open binary file."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        write(f)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 text atomically."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def file_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, as hex."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
