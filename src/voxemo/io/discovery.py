"""Finding the audio to work on: the audio files below a folder (corpus loaders), and the inputs of a prediction
run (files, folders and manifests), listed lazily.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from voxemo.io.audio import AUDIO_EXTENSIONS, CORPUS_EXTENSIONS
from voxemo.io.manifest import MANIFEST_EXTENSIONS, manifest_inputs


def find_audio(root: Path, extensions: tuple[str, ...] = CORPUS_EXTENSIONS) -> list[Path]:
    """All files below ``root`` with one of ``extensions`` (case-insensitive), skipping hidden files, sorted."""
    return sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in extensions
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


# ---- inputs ----------------------------------------------------------------------------------------------------
def expand_inputs(paths: Iterable[str | os.PathLike[str]]) -> Iterator[tuple[str, str | None]]:
    """Yield ``(file, None)`` for each audio file to predict, or ``(path, error)`` for an input that cannot be used.

    A folder is walked recursively (sorted); a ``.jsonl`` or ``.csv`` file is a manifest: one written by
    :func:`voxemo.io.manifest.write_manifest`, or any CSV with a ``path`` column, or JSON lines with a ``"path"`` key.
    A relative path in a manifest is taken from the current folder, else from the manifest's folder.
    """
    for raw in paths:
        p = Path(raw)
        try:
            st = os.stat(p)
        except FileNotFoundError:
            yield str(p), f"{p}: no such file or folder"
            continue
        except (OSError, ValueError) as exc:  # too long a name, a symlink loop, a NUL byte: this input only
            cause = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            yield str(p), f"{str(p)[:200]}: unusable path ({cause})"
            continue
        if stat.S_ISDIR(st.st_mode):
            found = False
            for f in _walk_audio(p):
                found = True
                yield str(f), None
            if not found:
                yield str(p), f"{p}: folder contains no audio files ({', '.join(sorted(AUDIO_EXTENSIONS))})"
        elif p.suffix.lower() in MANIFEST_EXTENSIONS:
            yield from manifest_inputs(p)
        else:
            yield str(p), None


def _walk_audio(folder: Path) -> Iterator[Path]:
    """The audio files below ``folder`` in the order of ``sorted(folder.rglob("*"))``, found one folder at a time:
    a folder's own sorted entries are all that is held, so a tree of 10^6 files costs the memory of its largest
    folder, not of all its paths. As ``rglob``, it enters no linked folder and skips a folder it may not read."""
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                yield from _walk_audio(Path(entry.path))
            elif entry.is_file() and Path(entry.name).suffix.lower() in AUDIO_EXTENSIONS:
                yield Path(entry.path)
        except OSError:
            continue
