"""EMOVO, the Italian emotional speech corpus (Costantini et al., LREC 2014).

Six actors (``f1 f2 f3`` female, ``m1 m2 m3`` male), each in a folder named after them, 14 sentences in seven
states: 588 clips. A file name ``EEE-SS-TT`` such as ``dis-f1-b1`` holds the emotion (Italian abbreviation),
the speaker and the sentence code.

Emotion codes (Italian → voxemo): dis disgusto → disgust, gio gioia → happy, neu neutro → neutral,
pau paura → fearful, rab rabbia → angry, sor sorpresa → surprised, tri tristezza → sad.

Not verified here: the exact list of the 14 sentence codes (the corpus documentation, *La struttura di
EMOVO*, was not available); any letter followed by one or two digits is accepted as a sentence code.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from voxemo.core.errors import CorpusError
from voxemo.core.records import Utterance
from voxemo.corpus.base import audio_files, check_folder, corpus_folder, decode, unique_clips

EMOTION_CODES: dict[str, str] = {
    "dis": "disgust",
    "gio": "happy",
    "neu": "neutral",
    "pau": "fearful",
    "rab": "angry",
    "sor": "surprised",
    "tri": "sad",
}
SPEAKERS: dict[str, str] = {"f1": "female", "f2": "female", "f3": "female", "m1": "male", "m2": "male", "m3": "male"}
N_CLIPS = 588
NAME = re.compile(r"^([a-z]{3})-([a-z]\d)-([a-z]\d{1,2})$")


def emovo_utterance(path: str | os.PathLike[str]) -> Utterance:
    """Decode an EMOVO file name such as ``f1/dis-f1-b1.wav``; a speaker folder must agree with the name.

    Raises
    ------
    CorpusError
        If the name is not ``EEE-SS-TT``, holds an unknown emotion or speaker, or sits in another speaker's
        folder.

    Examples
    --------
    >>> u = emovo_utterance("m3/rab-m3-n2.wav")
    >>> u.speaker, u.gender, u.emotion, u.statement
    ('m3', 'male', 'angry', 'n2')
    """
    p = Path(path)
    m = NAME.match(p.stem)
    if not m:
        raise CorpusError(f"{p}: not an EMOVO file name (expected emotion-speaker-sentence, e.g. dis-f1-b1)")
    emo, speaker, sentence = m.groups()
    gender = decode(SPEAKERS, speaker, "speaker", p)
    check_folder(p, speaker, p.parent.name if p.parent.name in SPEAKERS else None)
    return Utterance(path=str(p), corpus="emovo", speaker=speaker, emotion=decode(EMOTION_CODES, emo, "emotion", p),
                     gender=gender, statement=sentence)


def looks_like_emovo(path: Path) -> bool:
    """Whether a file is named by EMOVO's convention (used by corpus auto-detection)."""
    return NAME.match(path.stem) is not None


def load_emovo(path: str | os.PathLike[str]) -> list[Utterance]:
    """Load EMOVO from its folder (speaker folders ``f1`` … ``m3``, possibly below ``EMOVO/``) or a zip.

    Raises
    ------
    CorpusError
        If the path is missing, holds no EMOVO audio, a malformed name or unknown code, or a clip twice.
    """
    root = corpus_folder(path, "EMOVO")
    return unique_clips(emovo_utterance(f) for f in audio_files(root, "EMOVO", "dis-f1-b1"))
