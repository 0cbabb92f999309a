"""TurEV-DB, the Turkish Emotion-Voice Database (Canpolat, Ormanoğlu & Zeyrek, SLTU-CCURL 2020).

1,735 single Turkish words by six speakers in four emotions, one folder per emotion: ``Angry/``, ``Calm/``,
``Happy/``, ``Sad/``, each holding ``SPEAKER_EMOTION_WORD`` files such as ``Calm/1358_sk_beste.wav``. The emotion
code repeats the folder: ``kz`` kızgın → angry, ``mt`` mutlu → happy, ``hl`` hüzünlü → sad, ``sk`` sakin → calm.
Speakers 1157, 1234, 1358, 1984, 6783, 7895; genders are not given. Clips are 0.35 to 2.47 s long, much shorter
than a model's analysis window. The corpus has no neutral: its resting state is calm.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from voxemo.core.errors import CorpusError
from voxemo.core.records import Utterance
from voxemo.corpus.base import audio_files, corpus_folder, decode, unique_clips

EMOTION_CODES: dict[str, str] = {"kz": "angry", "mt": "happy", "hl": "sad", "sk": "calm"}
FOLDERS: dict[str, str] = {"angry": "kz", "happy": "mt", "sad": "hl", "calm": "sk"}
SPEAKERS: tuple[str, ...] = ("1157", "1234", "1358", "1984", "6783", "7895")
N_CLIPS = 1735
NAME = re.compile(r"^(\d{4})_([a-z]{2})_(.+)$")


def turevdb_utterance(path: str | os.PathLike[str]) -> Utterance:
    """Decode a TurEV-DB clip such as ``Calm/1358_sk_beste.wav`` into its record.

    Raises
    ------
    CorpusError
        If the name is not ``SPEAKER_EMOTION_WORD``, holds an unknown speaker or emotion code, or its emotion
        disagrees with its folder.

    Examples
    --------
    >>> u = turevdb_utterance("Sad/6783_hl_kitap.flac")
    >>> u.corpus, u.speaker, u.emotion, u.statement
    ('turevdb', '6783', 'sad', 'kitap')
    """
    p = Path(path)
    m = NAME.match(p.stem)
    if not m:
        raise CorpusError(f"{p}: not a TurEV-DB file name (expected SPEAKER_EMOTION_WORD, e.g. 1358_sk_beste)")
    speaker, code, word = m.groups()
    decode({s: s for s in SPEAKERS}, speaker, "speaker", p)
    emotion = decode(EMOTION_CODES, code, "emotion", p)
    folder = p.parent.name.lower()
    if folder in FOLDERS and FOLDERS[folder] != code:
        raise CorpusError(f"{p}: emotion code {code!r} ({emotion}) disagrees with its folder {p.parent.name!r}")
    return Utterance(path=str(p), corpus="turevdb", speaker=speaker, emotion=emotion, statement=word)


def looks_like_turevdb(path: Path) -> bool:
    """Whether a file follows TurEV-DB's convention: a known speaker and emotion code, in its emotion's folder."""
    m = NAME.match(path.stem)
    return bool(m and m.group(1) in SPEAKERS and FOLDERS.get(path.parent.name.lower()) == m.group(2))


def load_turevdb(path: str | os.PathLike[str]) -> list[Utterance]:
    """Load TurEV-DB from its folder (``Angry/``, ``Calm/``, ``Happy/``, ``Sad/``) or a zip of it.

    Raises
    ------
    CorpusError
        If the path is missing, holds no TurEV-DB audio, a malformed name or unknown code, or a clip twice.
    """
    root = corpus_folder(path, "TurEV-DB")
    return unique_clips(turevdb_utterance(f) for f in audio_files(root, "TurEV-DB", "Calm/1358_sk_beste"))
