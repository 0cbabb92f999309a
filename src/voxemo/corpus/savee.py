"""SAVEE, Surrey Audio-Visual Expressed Emotion (Haq & Jackson, 2008–2009).

Four male British English speakers (DC, JE, JK, KL), 120 utterances each: 480 clips. The original audio
download keeps each speaker in a folder (``AudioData/DC/a01.wav``); the widely used re-packaging puts all in
one folder with the speaker as prefix (``ALL/DC_a01.wav``). Both are accepted; where a file sits in a
speaker folder and carries a prefix, they must agree.

A name ``EE NN`` holds the emotion code and the sentence number: a anger → angry, d disgust → disgust,
f fear → fearful, h happiness → happy, n neutral → neutral, sa sadness → sad, su surprise → surprised.
15 sentences per emotion and 30 neutral ones per speaker.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from voxemo.core.errors import CorpusError
from voxemo.core.records import Utterance
from voxemo.corpus.base import audio_files, check_folder, corpus_folder, decode, unique_clips

EMOTION_CODES: dict[str, str] = {
    "a": "angry",
    "d": "disgust",
    "f": "fearful",
    "h": "happy",
    "n": "neutral",
    "sa": "sad",
    "su": "surprised",
}
SPEAKERS: tuple[str, ...] = ("DC", "JE", "JK", "KL")
N_CLIPS = 480
NAME = re.compile(r"^(?:([A-Z]{2})_)?([a-z]{1,2})(\d{2})$")


def savee_utterance(path: str | os.PathLike[str]) -> Utterance:
    """Decode a SAVEE file name: ``DC_a01.wav``, or ``a01.wav`` inside a speaker folder ``DC/``.

    Raises
    ------
    CorpusError
        If the name is malformed, the emotion or speaker is unknown, the speaker is neither in the name nor the
        folder, or name and folder disagree.

    Examples
    --------
    >>> u = savee_utterance("AudioData/JK/sa03.wav")
    >>> u.speaker, u.gender, u.emotion, u.statement
    ('JK', 'male', 'sad', 'sa03')
    """
    p = Path(path)
    m = NAME.match(p.stem)
    if not m:
        raise CorpusError(f"{p}: not a SAVEE file name (expected DC_a01 or a01 in a speaker folder)")
    prefix, emo, number = m.groups()
    folder = p.parent.name if p.parent.name in SPEAKERS else None
    speaker = prefix or folder
    if speaker is None:
        raise CorpusError(f"{p}: no SAVEE speaker in the name or folder; expected a prefix or folder "
                          f"{', '.join(SPEAKERS)}")
    decode({s: s for s in SPEAKERS}, speaker, "speaker", p)
    check_folder(p, speaker, folder)
    return Utterance(path=str(p), corpus="savee", speaker=speaker, emotion=decode(EMOTION_CODES, emo, "emotion", p),
                     gender="male", statement=f"{emo}{number}")


def looks_like_savee(path: Path) -> bool:
    """Whether a file is named by SAVEE's convention (used by corpus auto-detection)."""
    m = NAME.match(path.stem)
    return m is not None and (m.group(1) in SPEAKERS or (m.group(1) is None and path.parent.name in SPEAKERS))


def load_savee(path: str | os.PathLike[str]) -> list[Utterance]:
    """Load SAVEE from ``AudioData/`` (speaker folders), a flat folder of ``DC_a01.wav`` files, or a zip.

    Raises
    ------
    CorpusError
        If the path is missing, holds no SAVEE audio, a malformed name or unknown code, or a clip twice.
    """
    root = corpus_folder(path, "SAVEE")
    return unique_clips(savee_utterance(f) for f in audio_files(root, "SAVEE", "DC_a01 or DC/a01"))
