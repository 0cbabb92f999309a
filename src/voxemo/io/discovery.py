"""Finding the audio to work on: the audio files below a folder (corpus loaders), and the inputs of a prediction
run (files, folders and manifests), listed lazily.
"""

from __future__ import annotations

import os
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
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS)
            if not files:
                yield str(p), f"{p}: folder contains no audio files ({', '.join(sorted(AUDIO_EXTENSIONS))})"
            for f in files:
                yield str(f), None
        elif not p.exists():
            yield str(p), f"{p}: no such file or folder"
        elif p.suffix.lower() in MANIFEST_EXTENSIONS:
            yield from manifest_inputs(p)
        else:
            yield str(p), None
