"""CREMA-D, the Crowd-sourced Emotional Multimodal Actors Dataset (Cao et al., IEEE TAFFC 2014).

91 actors (ids 1001–1091; 48 male, 43 female) say 12 sentences in six emotions: 7,442 clips. A file name
``AAAA_SSS_EEE_LL`` such as ``1001_DFA_ANG_XX`` holds the actor, the sentence code, the emotion and its
level. The clips are in ``AudioWAV/`` (``AudioMP3/`` holds the same clips as MP3 and is not read).

Emotion codes (→ voxemo): ANG → angry, DIS → disgust, FEA → fearful, HAP → happy, NEU → neutral, SAD → sad.
Levels: LO → low, MD → medium, HI → high, XX → unspecified (None). Only one sentence (IEO) was recorded at
the three levels; the rest are XX.

Genders come from the corpus' ``VideoDemographics.csv`` (columns ActorID, Age, Sex, Race, Ethnicity) when it
sits in the corpus folder or the folder above ``AudioWAV/``; without it gender is None. The clip
``1076_MTI_SAD_XX`` is known to be silent in the release; audio reading reports it, the loader keeps it.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

from voxemo.core.errors import CorpusError
from voxemo.core.records import Utterance
from voxemo.corpus.base import audio_files, corpus_folder, decode, unique_clips

EMOTION_CODES: dict[str, str] = {
    "ANG": "angry",
    "DIS": "disgust",
    "FEA": "fearful",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
}
LEVELS: dict[str, str | None] = {"LO": "low", "MD": "medium", "HI": "high", "XX": None}
SENTENCES: dict[str, str] = {
    "IEO": "It's eleven o'clock",
    "TIE": "That is exactly what happened",
    "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about",
    "TAI": "The airplane is almost full",
    "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock",
    "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket",
    "ITS": "I think I've seen this before",
    "TSI": "The surface is slick",
    "WSI": "We'll stop in a couple of minutes",
}
N_CLIPS = 7442
DEMOGRAPHICS = "VideoDemographics.csv"
NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")


def cremad_utterance(path: str | os.PathLike[str], genders: dict[str, str] | None = None) -> Utterance:
    """Decode a CREMA-D file name such as ``1001_DFA_ANG_XX.wav``; ``genders`` maps actor ids to genders.

    Raises
    ------
    CorpusError
        If the name is not ``AAAA_SSS_EEE_LL`` or holds an unknown actor, sentence, emotion or level code.

    Examples
    --------
    >>> u = cremad_utterance("AudioWAV/1091_IEO_SAD_HI.wav", {"1091": "female"})
    >>> u.speaker, u.gender, u.emotion, u.intensity, u.statement
    ('1091', 'female', 'sad', 'high', 'IEO')
    """
    p = Path(path)
    m = NAME.match(p.stem)
    if not m:
        raise CorpusError(f"{p}: not a CREMA-D file name (expected actor_sentence_emotion_level, e.g. 1001_DFA_ANG_XX)")
    actor, sentence, emo, level = m.groups()
    if not 1001 <= int(actor) <= 1091:
        raise CorpusError(f"{p}: unknown actor code {actor!r}; expected 1001..1091")
    decode(SENTENCES, sentence, "sentence", p)
    return Utterance(path=str(p), corpus="cremad", speaker=actor, emotion=decode(EMOTION_CODES, emo, "emotion", p),
                     gender=(genders or {}).get(actor), intensity=decode(LEVELS, level, "level", p),
                     statement=sentence)


def looks_like_cremad(path: Path) -> bool:
    """Whether a file is named by CREMA-D's convention (used by corpus auto-detection)."""
    return NAME.match(path.stem) is not None


def read_demographics(path: Path) -> dict[str, str]:
    """Actor id → ``"male"``/``"female"`` from CREMA-D's ``VideoDemographics.csv``.

    Raises
    ------
    CorpusError
        If the file lacks the ActorID or Sex column or holds a sex other than Male/Female.
    """
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CorpusError(f"{path}: cannot read CREMA-D demographics ({exc})") from None
    out: dict[str, str] = {}
    for i, row in enumerate(rows, start=2):
        if "ActorID" not in row or "Sex" not in row:
            raise CorpusError(f"{path}: expected the columns ActorID and Sex")
        sex = decode({"Male": "male", "Female": "female"}, (row["Sex"] or "").strip(), f"Sex (line {i})", path)
        out[(row["ActorID"] or "").strip()] = sex
    return out


def load_cremad(path: str | os.PathLike[str]) -> list[Utterance]:
    """Load CREMA-D from its folder (``AudioWAV/`` or the repository root above it) or a zip.

    Raises
    ------
    CorpusError
        If the path is missing, holds no CREMA-D audio, a malformed name or unknown code, or a clip twice.
    """
    root = corpus_folder(path, "CREMA-D")
    files = audio_files(root, "CREMA-D", "1001_DFA_ANG_XX")
    genders: dict[str, str] = {}
    for candidate in (root / DEMOGRAPHICS, root.parent / DEMOGRAPHICS):
        if candidate.is_file():
            genders = read_demographics(candidate)
            break
    return unique_clips(cremad_utterance(f, genders) for f in files)
