"""Emo-DB, the Berlin Database of Emotional Speech (Burkhardt et al., Interspeech 2005).

535 German utterances by ten actors, one flat folder (``wav/`` in the official download). A file name
``SSTTTEV`` such as ``03a01Fa`` holds the speaker (2 digits), the text code (3 characters), the emotion as the
German initial and a version letter (a, b, c … when a sentence was recorded more than once).

Emotion letters (German word → voxemo): W Wut/Ärger → angry, L Langeweile → boredom, E Ekel → disgust,
A Angst → fearful, F Freude → happy, T Trauer → sad, N neutral → neutral. Boredom has no RAVDESS class; it
stays its own class (see :mod:`voxemo.core.labels`).

Speakers and genders from the corpus documentation: 03 m, 08 f, 09 f, 10 m, 11 m, 12 m, 13 f, 14 f, 15 m,
16 f. Text codes: a01 a02 a04 a05 a07 b01 b02 b03 b09 b10. Published counts per emotion: anger 127, boredom
81, disgust 46, fear 69, happiness 71, sadness 62, neutral 79 (checked against ``../shared/data/emodb``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from voxemo.core.errors import CorpusError
from voxemo.core.records import Utterance
from voxemo.corpus.base import audio_files, corpus_folder, decode, unique_clips

EMOTION_CODES: dict[str, str] = {
    "W": "angry",
    "L": "boredom",
    "E": "disgust",
    "A": "fearful",
    "F": "happy",
    "T": "sad",
    "N": "neutral",
}
SPEAKERS: dict[str, str] = {
    "03": "male", "08": "female", "09": "female", "10": "male", "11": "male",
    "12": "male", "13": "female", "14": "female", "15": "male", "16": "female",
}
TEXTS: tuple[str, ...] = ("a01", "a02", "a04", "a05", "a07", "b01", "b02", "b03", "b09", "b10")
N_CLIPS = 535
NAME = re.compile(r"^(\d{2})([ab]\d{2})([A-Z])([a-z])$")


def emodb_utterance(path: str | os.PathLike[str]) -> Utterance:
    """Decode an Emo-DB file name such as ``03a01Fa.wav`` into its record.

    Raises
    ------
    CorpusError
        If the name is not ``SSTTTEV`` or holds an unknown speaker, text or emotion code.

    Examples
    --------
    >>> u = emodb_utterance("wav/16b10Lb.wav")
    >>> u.speaker, u.gender, u.emotion, u.statement, u.repetition
    ('16', 'female', 'boredom', 'b10', 2)
    """
    p = Path(path)
    m = NAME.match(p.stem)
    if not m:
        raise CorpusError(f"{p}: not an Emo-DB file name (expected speaker, text, emotion, version, e.g. 03a01Fa)")
    speaker, text, emo, version = m.groups()
    gender = decode(SPEAKERS, speaker, "speaker", p)
    decode({t: t for t in TEXTS}, text, "text", p)
    return Utterance(path=str(p), corpus="emodb", speaker=speaker, emotion=decode(EMOTION_CODES, emo, "emotion", p),
                     gender=gender, statement=text, repetition=ord(version) - ord("a") + 1)


def looks_like_emodb(path: Path) -> bool:
    """Whether a file is named by Emo-DB's convention (used by corpus auto-detection)."""
    return NAME.match(path.stem) is not None


def load_emodb(path: str | os.PathLike[str]) -> list[Utterance]:
    """Load Emo-DB from its folder (the clips may sit in ``wav/`` below it) or the official zip.

    Raises
    ------
    CorpusError
        If the path is missing, holds no Emo-DB audio, a malformed name or unknown code, or a clip twice.
    """
    root = corpus_folder(path, "Emo-DB")
    return unique_clips(emodb_utterance(f) for f in audio_files(root, "Emo-DB", "03a01Fa"))
