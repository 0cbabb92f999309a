"""TESS, the Toronto Emotional Speech Set (Dupuis & Pichora-Fuller, 2010).

Two actresses, OAF (older, 64) and YAF (younger, 26), say 200 target words in the carrier phrase "Say the word
…" in seven emotions: 2,800 clips. A file name ``SPK_word_emotion`` such as ``OAF_back_angry`` holds the
speaker, the target word and the emotion; the common distribution puts each speaker-emotion pair in a folder
such as ``OAF_angry`` or ``YAF_pleasant_surprised`` (spelling and case of the folders vary between copies).

Emotion words (TESS → voxemo): angry, disgust, fear → fearful, happy, neutral, sad, and ``ps`` (pleasant
surprise; folders spell it out) → surprised. Both speakers are female.

One clip of the official release is misnamed ``OA_bite_neutral.wav`` (in ``OAF_neutral``); it is read as
speaker OAF through an explicit errata table rather than by accepting any prefix.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from voxemo.core.errors import CorpusError
from voxemo.core.records import Utterance
from voxemo.corpus.base import audio_files, check_folder, corpus_folder, decode, unique_clips

EMOTION_CODES: dict[str, str] = {
    "angry": "angry",
    "disgust": "disgust",
    "fear": "fearful",
    "happy": "happy",
    "neutral": "neutral",
    "ps": "surprised",
    "pleasant_surprise": "surprised",
    "pleasant_surprised": "surprised",
    "sad": "sad",
}
SPEAKERS: tuple[str, ...] = ("OAF", "YAF")
#: File stems of the official release whose speaker prefix is wrong, and the speaker they belong to.
SPEAKER_ERRATA: dict[str, str] = {"OA_bite_neutral": "OAF"}
N_CLIPS = 2800
NAME = re.compile(r"^([A-Za-z]{2,3})_([A-Za-z]+)_([A-Za-z_]+)$")
FOLDER = re.compile(r"^(OAF|YAF)_([A-Za-z_ -]+)$", re.IGNORECASE)


def _folder(path: Path) -> tuple[str, str] | None:
    """(speaker, emotion word) of a ``OAF_angry``-style folder, or None when the folder is not one."""
    m = FOLDER.match(path.parent.name)
    if not m:
        return None
    return m.group(1).upper(), re.sub(r"[ -]", "_", m.group(2).lower())


def tess_utterance(path: str | os.PathLike[str]) -> Utterance:
    """Decode a TESS file name such as ``OAF_back_angry.wav``; an ``OAF_angry``-style folder must agree.

    Raises
    ------
    CorpusError
        If the name is not ``SPK_word_emotion``, the speaker or emotion is unknown, or the folder names another
        speaker or emotion.

    Examples
    --------
    >>> u = tess_utterance("YAF_pleasant_surprised/YAF_chair_ps.wav")
    >>> u.speaker, u.gender, u.emotion, u.statement
    ('YAF', 'female', 'surprised', 'chair')
    """
    p = Path(path)
    m = NAME.match(p.stem)
    if not m:
        raise CorpusError(f"{p}: not a TESS file name (expected speaker_word_emotion, e.g. OAF_back_angry)")
    speaker = SPEAKER_ERRATA.get(p.stem, m.group(1).upper())
    decode({s: s for s in SPEAKERS}, speaker, "speaker", p)
    word, emo_word = m.group(2).lower(), m.group(3).lower()
    emotion = decode(EMOTION_CODES, emo_word, "emotion", p)
    folder = _folder(p)
    if folder is not None:
        check_folder(p, speaker, folder[0])
        folder_emotion = EMOTION_CODES.get(folder[1])
        if folder_emotion != emotion:
            raise CorpusError(f"{p}: emotion {emo_word!r} in the file name but the folder is {p.parent.name!r}")
    return Utterance(path=str(p), corpus="tess", speaker=speaker, emotion=emotion, gender="female", statement=word)


def looks_like_tess(path: Path) -> bool:
    """Whether a file is named by TESS's convention (used by corpus auto-detection)."""
    m = NAME.match(path.stem)
    return m is not None and SPEAKER_ERRATA.get(path.stem, m.group(1).upper()) in SPEAKERS


def load_tess(path: str | os.PathLike[str]) -> list[Utterance]:
    """Load TESS from its folder (flat, or ``OAF_angry``-style folders) or a zip.

    Raises
    ------
    CorpusError
        If the path is missing, holds no TESS audio, a malformed name or unknown code, or a clip twice.
    """
    root = corpus_folder(path, "TESS")
    return unique_clips(tess_utterance(f) for f in audio_files(root, "TESS", "OAF_back_angry"))
