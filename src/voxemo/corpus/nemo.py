"""nEMO, a dataset of emotional speech in Polish (Christop, LREC-COLING 2024; github.com/amu-cai/nEMO).

Nine actors portray six states: 4,481 clips in ``samples/``, named ``{speaker_id}_{emotion}_{sentence_id}``
(e.g. ``EB0_anger_12.wav``), described row by row in ``data.tsv`` with the tab-separated columns
``file_id, emotion, raw_text, normalized_text, speaker_id, gender, age``. The loader reads ``data.tsv`` (the
speaker and gender come from it; ``speaker_id`` is padded with spaces in the release and is stripped) and
checks each row against its file name.

Emotion labels (→ voxemo): anger → angry, fear → fearful, happiness → happy, neutral → neutral,
sadness → sad, surprised → surprised.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from pathlib import Path

from voxemo.core.errors import CorpusError
from voxemo.core.records import Utterance
from voxemo.corpus.base import corpus_folder, decode, unique_clips
from voxemo.io.discovery import find_audio

log = logging.getLogger(__name__)


EMOTION_CODES: dict[str, str] = {
    "anger": "angry",
    "fear": "fearful",
    "happiness": "happy",
    "neutral": "neutral",
    "sadness": "sad",
    "surprised": "surprised",
}
GENDERS: dict[str, str] = {"male": "male", "female": "female"}
N_CLIPS = 4481
METADATA = "data.tsv"
COLUMNS: tuple[str, ...] = ("file_id", "emotion", "speaker_id", "gender")
NAME = re.compile(r"^([A-Z]{2}\d)_([a-z]+)_(\d+)$")


def looks_like_nemo(path: Path) -> bool:
    """Whether a file is named by nEMO's convention (used by corpus auto-detection)."""
    return NAME.match(path.stem) is not None


def find_metadata(root: Path) -> Path | None:
    """nEMO's ``data.tsv`` in ``root`` or, when ``root`` is the ``samples/`` folder, beside it."""
    for candidate in (root / METADATA, root.parent / METADATA):
        if candidate.is_file():
            return candidate
    return None


def _row_utterance(tsv: Path, line: int, row: dict[str, str], audio: Path) -> Utterance:
    file_id = row["file_id"].strip()
    where = f"{tsv} line {line} ({file_id})"
    m = NAME.match(Path(file_id).stem)
    if not m:
        raise CorpusError(f"{where}: not an nEMO file name (expected speaker_emotion_sentence, e.g. EB0_anger_12)")
    speaker, label = row["speaker_id"].strip(), row["emotion"].strip()
    emotion = decode(EMOTION_CODES, label, "emotion", where)
    gender = decode(GENDERS, row["gender"].strip(), "gender", where)
    if (m.group(1), m.group(2)) != (speaker, label):
        raise CorpusError(f"{where}: the file name says {m.group(1)}/{m.group(2)} but the row says {speaker}/{label}")
    return Utterance(path=str(audio), corpus="nemo", speaker=speaker, emotion=emotion, gender=gender,
                     statement=m.group(3))


def load_nemo(path: str | os.PathLike[str]) -> list[Utterance]:
    """Load nEMO from its folder (holding ``data.tsv`` and ``samples/``) or its ``samples/`` folder.

    Every row of ``data.tsv`` must name an existing clip whose file name agrees with the row's speaker and
    emotion; clips without a row are left out with a warning.

    Raises
    ------
    CorpusError
        If ``data.tsv`` is missing or malformed, a row has an unknown emotion or gender, disagrees with its file
        name, or names a missing clip.
    """
    root = corpus_folder(path, "nEMO")
    tsv = find_metadata(root)
    if tsv is None:
        raise CorpusError(f"{root}: nEMO's {METADATA} not found here or in the folder above; nEMO is read through it")
    base = tsv.parent / "samples" if (tsv.parent / "samples").is_dir() else tsv.parent
    try:
        with open(tsv, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise CorpusError(f"{tsv}: missing column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}")
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CorpusError(f"{tsv}: cannot read nEMO metadata ({exc})") from None
    records = []
    for line, row in enumerate(rows, start=2):
        if any(row.get(c) is None for c in COLUMNS):
            raise CorpusError(f"{tsv} line {line}: too few columns; expected {', '.join(COLUMNS)}")
        audio = base / row["file_id"].strip()
        if not audio.is_file():
            raise CorpusError(f"{tsv} line {line}: clip {audio} not found")
        records.append(_row_utterance(tsv, line, row, audio))
    if not records:
        raise CorpusError(f"{tsv}: no rows; expected one per nEMO clip")
    listed = {Path(r.path).resolve() for r in records}
    extra = [f for f in find_audio(base) if f.resolve() not in listed]
    if extra:
        log.warning("nEMO: %d clip(s) under %s have no row in %s and are left out, e.g. %s", len(extra), base, tsv,
                    extra[0].name)
    return unique_clips(records)
