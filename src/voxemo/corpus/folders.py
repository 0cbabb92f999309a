"""A generic corpus laid out one folder per emotion: ``angry/clip.wav``, optionally with speaker folders.

Three layouts are accepted, all relative to the corpus folder:

- ``<label>/<clip>``: no speaker information; every clip gets speaker ``"unknown"`` and a warning is logged,
  because speaker-independent splits then cannot be made (use speaker folders or a CSV manifest).
- ``<speaker>/<label>/<clip>`` and ``<label>/<speaker>/<clip>``: the folder that is a label is the label, the
  other is the speaker.

Folder names are matched case-insensitively against :data:`LABELS`: voxemo's own emotion names
(:data:`voxemo.core.labels.TAXONOMY`) and the common noun forms listed there. A folder that is no label, or a
clip nested deeper, is an error naming the file.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from voxemo.core.errors import CorpusError
from voxemo.core.labels import TAXONOMY
from voxemo.core.records import Utterance
from voxemo.corpus.base import audio_files, corpus_folder, unique_clips

log = logging.getLogger(__name__)


#: Label (folder name or manifest label, lower case) → voxemo emotion.
LABELS: dict[str, str] = {
    **{e: e for e in TAXONOMY},
    "anger": "angry",
    "happiness": "happy",
    "sadness": "sad",
    "fear": "fearful",
    "surprise": "surprised",
    "disgusted": "disgust",
    "bored": "boredom",
}
UNKNOWN_SPEAKER = "unknown"


def map_label(label: str, where: object) -> str:
    """The voxemo emotion for a folder or manifest label (case-insensitive), or a CorpusError naming ``where``.

    >>> map_label("Anger", "x.wav"), map_label("calm", "x.wav")
    ('angry', 'calm')
    """
    key = label.strip().lower()
    if key not in LABELS:
        raise CorpusError(f"{where}: unknown label {label!r}; expected one of {', '.join(sorted(LABELS))}")
    return LABELS[key]


def is_label(name: str) -> bool:
    """Whether a folder name is a known label."""
    return name.strip().lower() in LABELS


def folder_utterance(path: Path, root: Path) -> Utterance:
    """The record of one clip below ``root`` in a folder-per-label layout (see the module docstring)."""
    parts = path.relative_to(root).parts[:-1]
    labelled = [i for i, part in enumerate(parts) if is_label(part)]
    if not 1 <= len(parts) <= 2 or len(labelled) != 1:
        raise CorpusError(f"{path}: expected <label>/<clip>, <speaker>/<label>/<clip> or <label>/<speaker>/<clip> "
                          f"below {root}, with exactly one folder named after an emotion "
                          f"({', '.join(sorted(LABELS))})")
    label = parts[labelled[0]]
    speaker = parts[1 - labelled[0]] if len(parts) == 2 else UNKNOWN_SPEAKER
    return Utterance(path=str(path), corpus="folders", speaker=speaker, emotion=map_label(label, path))


def looks_like_folders(path: Path, root: Path) -> bool:
    """Whether a clip sits in a folder-per-label layout (used by corpus auto-detection)."""
    parts = path.relative_to(root).parts[:-1]
    return 1 <= len(parts) <= 2 and sum(is_label(p) for p in parts) == 1


def load_folders(path: str | os.PathLike[str]) -> list[Utterance]:
    """Load a folder-per-label corpus (see the module docstring) or its zip.

    Raises
    ------
    CorpusError
        If the path is missing, holds no audio, or a clip is not in exactly one label folder.
    """
    root = corpus_folder(path, "folder-per-label corpus")
    records = unique_clips((folder_utterance(f, root) for f in audio_files(root, "folder-per-label", "angry/clip")),
                           by_name=False)
    unknown = sum(r.speaker == UNKNOWN_SPEAKER for r in records)
    if unknown:
        log.warning("%s: %d clip(s) have no speaker folder; they share speaker %r, so no speaker-independent split "
                    "is possible for them (use <speaker>/<label>/ folders or a CSV manifest)", root, unknown,
                    UNKNOWN_SPEAKER)
    return records
