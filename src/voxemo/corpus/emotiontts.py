"""EmotionTTS Open DB, the emotional part of a Korean speech corpus for expressive TTS (Selvas AI under KAIST, 2017-19).

Published in github.com/emotiontts/emotiontts_open_db (``Dataset/SpeechCorpus/Emotional``; CC BY-NC-SA 4.0, and
the README restricts use to research). The public repository holds 5% of the corpus: 5 clips per speaker and
emotion. Two sub-datasets, one folder per speaker code, the code repeated in every file name::

    plain-to-emotional/ema/wav/ema00101.wav       neutral scripts read in each emotion: ema emb (f), emf emg emh (m)
    emotional-to-emotional/nea/wav/nea00301.wav   scripts written for each emotion: nea…nee (f), nek…neo (m)

Korean, PCM 16-bit mono at 22,050 Hz, 3.7 to 10.7 s. ``script/`` and ``transcript/`` beside ``wav/`` hold the text
(the transcript spells numbers out); the loader needs only the audio.

The emotion is the clip number's hundred: 1-100 neutral (일반), 101-200 happy (기쁨), 201-300 sad, 301-400 angry.
The README gives 201-300 as angry (화남) and 301-400 as sad (슬픔), but the released files say otherwise: the
emotional scripts 201-300 are sad sentences ("입영 통지서를 받았거든, 너무 우울해") and 301-400 angry ones
("도대체 몇 번을 더 말씀드려야 술을 끊으시겠습니까?"), and in all fifteen speaker folders of both sub-datasets
the 201-300 clips have the lowest and flattest pitch, as sad speech does.

Speakers: the five plain-to-emotional voices are heard again in emotional-to-emotional (ema as nea, emb as neb,
emf as nek, emg as nel, emh as nem: each pair is the other's nearest voice across the sub-datasets, with the same
gender; measured, not documented). So a clip's speaker is its voice, named by its emotional-to-emotional code,
and a speaker-level split never puts one person on both sides. Ten speakers, five female and five male.

Plain-to-emotional reads the same sentence in every emotion (``ema00001`` … ``ema00301`` share a text), so its
``statement`` is the number within the hundred (``p001``); emotional-to-emotional texts differ by emotion and
their ``statement`` is the clip number (``e301``). Both sets share texts across speakers.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from voxemo.core.errors import CorpusError
from voxemo.core.records import Utterance
from voxemo.corpus.base import audio_files, corpus_folder, decode, unique_clips

#: Emotion by the clip number's hundred (0: 1-100, …, 3: 301-400); see the module docstring for 2 and 3.
BLOCKS: tuple[str, ...] = ("neutral", "happy", "sad", "angry")
#: Speaker code in the file name → (voice, gender). Plain-to-emotional codes map onto the same person's code.
SPEAKERS: dict[str, tuple[str, str]] = {
    "ema": ("nea", "female"), "emb": ("neb", "female"),
    "emf": ("nek", "male"), "emg": ("nel", "male"), "emh": ("nem", "male"),
    "nea": ("nea", "female"), "neb": ("neb", "female"), "nec": ("nec", "female"),
    "ned": ("ned", "female"), "nee": ("nee", "female"),
    "nek": ("nek", "male"), "nel": ("nel", "male"), "nem": ("nem", "male"),
    "nen": ("nen", "male"), "neo": ("neo", "male"),
}
#: The sub-dataset folder of each code prefix.
SUBSETS: dict[str, str] = {"em": "plain-to-emotional", "ne": "emotional-to-emotional"}
LANGUAGE = "ko"
SAMPLE_RATE = 22050
#: Clips in the public repository (5 per speaker code and emotion); the full corpus has 400 per speaker code.
N_CLIPS = 300
NAME = re.compile(r"^([a-z]{3})(\d{5})$")


def emotiontts_utterance(path: str | os.PathLike[str]) -> Utterance:
    """Decode an EmotionTTS clip such as ``emotional-to-emotional/nea/wav/nea00301.wav`` into its record.

    Raises
    ------
    CorpusError
        If the name is not a speaker code and a number 00001-00400, the code is unknown, or a folder above the
        clip names another speaker code or the other sub-dataset.

    Examples
    --------
    >>> u = emotiontts_utterance("plain-to-emotional/emf/wav/emf00203.wav")
    >>> u.corpus, u.speaker, u.gender, u.emotion, u.statement
    ('emotiontts', 'nek', 'male', 'sad', 'p003')
    >>> u = emotiontts_utterance("nea00301.flac")
    >>> u.speaker, u.emotion, u.statement
    ('nea', 'angry', 'e301')
    """
    p = Path(path)
    m = NAME.match(p.stem)
    if not m:
        raise CorpusError(f"{p}: not an EmotionTTS file name (expected a speaker code and 5 digits, e.g. nea00301)")
    code, digits = m.groups()
    voice, gender = decode(SPEAKERS, code, "speaker", p)
    number = int(digits)
    if not 1 <= number <= 100 * len(BLOCKS):
        raise CorpusError(f"{p}: clip number {number} outside 1-{100 * len(BLOCKS)}, where the emotions are coded")
    block, within = divmod(number - 1, 100)
    subset = SUBSETS[code[:2]]
    folders = [parent.name for parent in p.parents]
    if folders[:1] == ["wav"] and folders[1] in SPEAKERS and folders[1] != code:
        raise CorpusError(f"{p}: speaker code {code!r} in the file name but the folder says {folders[1]!r}")
    other = next(s for s in SUBSETS.values() if s != subset)
    if other in folders:
        raise CorpusError(f"{p}: a {subset} speaker code {code!r} inside {other}/")
    statement = f"p{within + 1:03d}" if subset == "plain-to-emotional" else f"e{number:03d}"
    return Utterance(path=str(p), corpus="emotiontts", speaker=voice, emotion=BLOCKS[block], gender=gender,
                     statement=statement)


def looks_like_emotiontts(path: Path) -> bool:
    """Whether a file is named by EmotionTTS's convention: a known speaker code and a number 00001-00400."""
    m = NAME.match(path.stem)
    return bool(m and m.group(1) in SPEAKERS and 1 <= int(m.group(2)) <= 100 * len(BLOCKS))


def load_emotiontts(path: str | os.PathLike[str]) -> list[Utterance]:
    """Load EmotionTTS Open DB from its ``Emotional`` folder (or any folder above the speaker folders) or a zip.

    Only audio is read: the ``script/`` and ``transcript/`` text files beside ``wav/`` are left alone.

    Raises
    ------
    CorpusError
        If the path is missing, holds no EmotionTTS audio, a malformed name or unknown code, or a clip twice.
    """
    root = corpus_folder(path, "EmotionTTS")
    return unique_clips(emotiontts_utterance(f) for f in audio_files(root, "EmotionTTS", "nea/wav/nea00301"))
