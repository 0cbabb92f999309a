"""One entry point for every supported corpus: :func:`load_corpus`, with auto-detection.

Detection looks at what a corpus ships, not at folder names a user may have chosen: a ``.csv``/``.jsonl``
file is a manifest, a folder holding nEMO's ``data.tsv`` is nEMO, and otherwise the audio files' names decide:
the corpus whose naming convention *every* clip follows wins. A folder-per-label layout is recognized when
every clip sits in exactly one emotion-named folder. When no convention covers all clips (a mixed folder) or
more than one does, :func:`detect_corpus` raises a :class:`~voxemo.core.errors.CorpusError` naming the supported
corpora; pass ``corpus=`` (``--corpus`` on the command line) to choose.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from voxemo.core.errors import CorpusError
from voxemo.core.records import Utterance
from voxemo.corpus import (
    cremad,
    emodb,
    emotiontts,
    emovo,
    folders,
    labelled_csv,
    nemo,
    ravdess,
    savee,
    tess,
    turevdb,
)
from voxemo.corpus.base import unpack_zip
from voxemo.io.discovery import find_audio

log = logging.getLogger(__name__)


#: Corpus name → loader taking a path. Names are what ``Utterance.corpus`` holds and ``--corpus`` accepts.
LOADERS: dict[str, Callable[[str | os.PathLike[str]], list[Utterance]]] = {
    "ravdess": ravdess.load_ravdess,
    "cremad": cremad.load_cremad,
    "tess": tess.load_tess,
    "savee": savee.load_savee,
    "emodb": emodb.load_emodb,
    "emovo": emovo.load_emovo,
    "nemo": nemo.load_nemo,
    "turevdb": turevdb.load_turevdb,
    "emotiontts": emotiontts.load_emotiontts,
    "folders": folders.load_folders,
    "manifest": labelled_csv.load_manifest,
}
#: The names of the supported corpora and layouts.
CORPORA: tuple[str, ...] = tuple(LOADERS)

#: Corpora recognized by their file-naming convention, and the test for one file.
_NAMING: dict[str, Callable[[Path], bool]] = {
    "ravdess": ravdess.looks_like_ravdess,
    "cremad": cremad.looks_like_cremad,
    "tess": tess.looks_like_tess,
    "savee": savee.looks_like_savee,
    "emodb": emodb.looks_like_emodb,
    "emovo": emovo.looks_like_emovo,
    "nemo": nemo.looks_like_nemo,
    "turevdb": turevdb.looks_like_turevdb,
    "emotiontts": emotiontts.looks_like_emotiontts,
}


#: Corpus name → how its clips are named, for messages and ``voxemo corpus --help``.
DESCRIPTIONS: dict[str, str] = {
    "ravdess": "RAVDESS, 03-01-05-02-01-02-12.wav in Actor_XX/",
    "cremad": "CREMA-D, 1001_DFA_ANG_XX.wav",
    "tess": "TESS, OAF_back_angry.wav",
    "savee": "SAVEE, DC_a01.wav or DC/a01.wav",
    "emodb": "Emo-DB, 03a01Fa.wav",
    "emovo": "EMOVO, f1/dis-f1-b1.wav",
    "nemo": "nEMO, data.tsv with samples/EB0_anger_12.wav",
    "turevdb": "TurEV-DB, Calm/1358_sk_beste.wav",
    "emotiontts": "EmotionTTS Open DB, nea/wav/nea00301.wav",
    "folders": "one folder per emotion, angry/clip.wav or speaker/angry/clip.wav",
    "manifest": "a CSV with path,label,speaker columns",
}


def _supported() -> str:
    return "supported: " + "; ".join(f"{name} ({DESCRIPTIONS[name]})" for name in CORPORA)


def detect_corpus(path: str | os.PathLike[str]) -> str:
    """The name of the corpus at ``path`` (a folder, a zip of one, or a manifest file).

    Raises
    ------
    CorpusError
        If the path is missing or holds no audio, or when no corpus (or more than one) accounts for every clip;
        the message lists the supported corpora.
    """
    root = Path(path)
    if not root.exists():
        raise CorpusError(f"{root}: no such file or folder")
    if root.is_file():
        if labelled_csv.is_manifest(root):
            return "manifest"
        if root.suffix.lower() != ".zip":
            raise CorpusError(f"{root}: expected a corpus folder, its .zip archive or a .csv/.jsonl manifest")
        root = unpack_zip(root)
    if (root / nemo.METADATA).is_file():
        return "nemo"
    files = find_audio(root)
    if not files:
        raise CorpusError(f"{root}: no audio (.wav or .flac) found; {_supported()}")
    counts = {name: sum(looks(f) for f in files) for name, looks in _NAMING.items()}
    counts["folders"] = sum(folders.looks_like_folders(f, root) for f in files)
    complete = [name for name, n in counts.items() if n == len(files)]
    if set(complete) == {"turevdb", "folders"}:  # TurEV-DB's own layout is a folder per emotion with named clips
        complete = ["turevdb"]
    if len(complete) == 1:
        log.info("%s: detected corpus %s (%d clips)", root, complete[0], len(files))
        return complete[0]
    if complete:
        raise CorpusError(f"{root}: ambiguous, the clips fit {' and '.join(complete)}; choose one with "
                          f"corpus= (--corpus NAME)")
    partial = {name: n for name, n in counts.items() if n}
    if partial:
        seen = ", ".join(f"{n} like {name}" for name, n in sorted(partial.items(), key=lambda kv: -kv[1]))
        best = max(partial, key=lambda k: partial[k])
        looks = _NAMING.get(best, lambda f: folders.looks_like_folders(f, root))
        odd = next(f for f in files if not looks(f))
        raise CorpusError(f"{root}: mixed or unrecognized clips: of {len(files)}, {seen}; e.g. {odd} fits no "
                          f"{best} name; keep one corpus per folder or choose with --corpus ({_supported()})")
    raise CorpusError(f"{root}: no supported corpus naming convention recognized (e.g. {files[0].name}); "
                      f"{_supported()}; for other data use emotion-named folders or a CSV manifest")


def load_corpus(path: str | os.PathLike[str], corpus: str | None = None) -> list[Utterance]:
    """Load any supported corpus as :class:`~voxemo.core.records.Utterance` records, sorted by path.

    Parameters
    ----------
    path : path-like
        The corpus folder, its zip archive, or a CSV/JSONL manifest.
    corpus : str, optional
        One of :data:`CORPORA`; detected from the files when None (see :func:`detect_corpus`).

    Returns
    -------
    list of Utterance
        Each with ``path``, ``corpus``, ``speaker`` (unique within the corpus), ``emotion`` (in
        :data:`voxemo.core.labels.TAXONOMY`) and, where the corpus records them, gender, intensity, statement and
        repetition.

    Raises
    ------
    CorpusError
        If ``corpus`` is unknown, the corpus cannot be detected, or a clip breaks its corpus' convention (the
        message names the file).
    """
    if corpus is None:
        corpus = detect_corpus(path)
    elif corpus not in LOADERS:
        raise CorpusError(f"unknown corpus {corpus!r}; {_supported()}")
    return LOADERS[corpus](path)
