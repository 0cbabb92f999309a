"""RAVDESS (Livingstone & Russo, 2018): file-name parsing and loading.

A file name ``MM-VV-EE-II-SS-RR-AA`` holds modality, vocal channel, emotion, intensity, statement,
repetition and actor; odd actors are male, even actors female. The loader accepts the ``Actor_XX/`` tree, a
flat folder of clips, or the official ``Audio_Speech_Actors_01-24.zip`` (unpacked once beside the archive).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from voxemo.core.errors import CorpusError
from voxemo.core.labels import EMOTIONS
from voxemo.core.records import Utterance
from voxemo.corpus.base import unpack_zip
from voxemo.io.audio import CORPUS_EXTENSIONS
from voxemo.io.discovery import find_audio

__all__ = ["EMOTION_CODES", "N_CLIPS", "RAVDESS_EXTENSIONS", "RavdessName", "find_audio", "load_ravdess",
           "looks_like_ravdess", "parse_ravdess_name", "ravdess_utterance", "unpack_zip"]

MODALITIES = {"01": "audio-video", "02": "video-only", "03": "audio-only"}
VOCAL_CHANNELS = {"01": "speech", "02": "song"}
INTENSITIES = {"01": "normal", "02": "strong"}
STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
EMOTION_CODES = {f"{i + 1:02d}": name for i, name in enumerate(EMOTIONS)}
RAVDESS_EXTENSIONS = CORPUS_EXTENSIONS
N_CLIPS = 1440
_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")
_ACTOR_DIR = re.compile(r"^Actor_(\d{2})$")


@dataclass(frozen=True)
class RavdessName:
    """The seven fields of a RAVDESS file name, decoded, plus the actor's gender."""

    modality: str
    vocal_channel: str
    emotion: str
    intensity: str
    statement: str
    repetition: int
    actor: str
    gender: str


def parse_ravdess_name(path: str | os.PathLike[str]) -> RavdessName:
    """Decode a RAVDESS file name such as ``03-01-05-02-01-02-12.wav``.

    Raises
    ------
    CorpusError
        If the name does not have seven two-digit fields or a field holds an unknown code.

    Examples
    --------
    >>> n = parse_ravdess_name("Actor_12/03-01-05-02-01-02-12.wav")
    >>> n.emotion, n.intensity, n.actor, n.gender, n.repetition
    ('angry', 'strong', '12', 'female', 2)
    """
    p = Path(path)
    m = _NAME.match(p.stem)
    if not m:
        raise CorpusError(f"{p}: not a RAVDESS file name (expected MM-VV-EE-II-SS-RR-AA, e.g. 03-01-05-02-01-02-12)")
    mod, voc, emo, inten, stmt, rep, actor = m.groups()

    def decode(table: dict[str, str], code: str, field: str) -> str:
        if code not in table:
            raise CorpusError(f"{p}: unknown {field} code {code!r}; expected one of {', '.join(sorted(table))}")
        return table[code]

    name = RavdessName(
        modality=decode(MODALITIES, mod, "modality"),
        vocal_channel=decode(VOCAL_CHANNELS, voc, "vocal channel"),
        emotion=decode(EMOTION_CODES, emo, "emotion"),
        intensity=decode(INTENSITIES, inten, "intensity"),
        statement=decode(STATEMENTS, stmt, "statement"),
        repetition=int(rep),
        actor=actor,
        gender="male" if int(actor) % 2 else "female",
    )
    if rep not in ("01", "02"):
        raise CorpusError(f"{p}: unknown repetition code {rep!r}; expected 01 or 02")
    if not 1 <= int(actor) <= 24:
        raise CorpusError(f"{p}: unknown actor code {actor!r}; expected 01..24")
    if name.emotion == "neutral" and name.intensity == "strong":
        raise CorpusError(f"{p}: neutral clips have no strong intensity (code 02) in RAVDESS")
    return name


def ravdess_utterance(path: str | os.PathLike[str]) -> Utterance:
    """Build the :class:`Utterance` record of one RAVDESS clip from its file name."""
    n = parse_ravdess_name(path)
    return Utterance(
        path=str(path),
        corpus="ravdess",
        speaker=n.actor,
        emotion=n.emotion,
        gender=n.gender,
        intensity=n.intensity,
        statement=n.statement,
        repetition=n.repetition,
    )


def looks_like_ravdess(path: Path) -> bool:
    """Whether a file is named by RAVDESS's convention (used by corpus auto-detection)."""
    return _NAME.match(path.stem) is not None


def load_ravdess(path: str | os.PathLike[str]) -> list[Utterance]:
    """Load RAVDESS from an ``Actor_XX/`` tree, a flat folder, or the official zip archive.

    Returns the speech clips' records sorted by path. Song clips (vocal channel 02) are left out: voxemo
    models speech.

    Raises
    ------
    CorpusError
        If the path is missing, holds no RAVDESS audio, has a malformed or unknown file name, a clip in the
        wrong ``Actor_XX`` folder, or the same clip twice.
    """
    root = Path(path)
    if not root.exists():
        raise CorpusError(f"{root}: no such file or folder; pass the RAVDESS folder or Audio_Speech_Actors_01-24.zip")
    if root.is_file():
        if root.suffix.lower() != ".zip":
            raise CorpusError(f"{root}: expected a folder or a .zip archive of RAVDESS")
        root = unpack_zip(root)
    records: list[Utterance] = []
    seen: dict[str, Path] = {}
    for f in find_audio(root, RAVDESS_EXTENSIONS):
        rec = ravdess_utterance(f)
        folder = _ACTOR_DIR.match(f.parent.name)
        if folder and folder.group(1) != rec.speaker:
            raise CorpusError(f"{f}: actor {rec.speaker} in the file name but the folder is {f.parent.name}")
        if f.stem in seen:
            raise CorpusError(f"{f}: the same clip also exists as {seen[f.stem]}; keep one of them")
        seen[f.stem] = f
        if parse_ravdess_name(f).vocal_channel == "speech":
            records.append(rec)
    if not records:
        raise CorpusError(f"{root}: no RAVDESS speech clips (.wav or .flac named like 03-01-05-02-01-02-12) found")
    return records
