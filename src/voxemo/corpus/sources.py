"""The clips a command works on, from what a user names: a corpus folder, zip or manifest (detected, or named),
several of them at once, or nothing (RAVDESS from ``$VOXEMO_DATA``, a downloaded copy, or a fresh download)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from voxemo.core.errors import ConfigError, CorpusError
from voxemo.core.labels import EMOTIONS, EXTRA_EMOTIONS
from voxemo.core.records import Utterance
from voxemo.corpus.download import resolve_ravdess
from voxemo.corpus.ravdess import load_ravdess
from voxemo.corpus.registry import load_corpus

#: the value of a per-source corpus name that means "detect it"
AUTO = "auto"


def load_source(data: str | None, corpus: str | None = None, *, progress: bool = True) -> list[Utterance]:
    """The records of one corpus: ``data`` read by :func:`~voxemo.corpus.registry.load_corpus` (``corpus`` names its
    convention, None detects it); without ``data``, RAVDESS is found or downloaded
    (:func:`~voxemo.corpus.download.resolve_ravdess`)."""
    if not data and corpus not in (None, "ravdess"):
        raise CorpusError(f"--corpus {corpus} needs the corpus folder as DATA")
    if not data or corpus == "ravdess":
        return load_ravdess(resolve_ravdess(data, progress=progress))
    return load_corpus(Path(data).expanduser(), corpus)


def load_sources(data: Sequence[str], corpora: Sequence[str] | None = None, *,
                 progress: bool = True) -> list[Utterance]:
    """The records of several corpora (none: RAVDESS as :func:`load_source` finds it).

    ``corpora`` is given once for all sources, once per source in order, or not at all; ``"auto"`` detects. The
    same corpus given twice is told apart by a ``-2``, ``-3`` … suffix on its name, so its speakers stay distinct
    from the first copy's.
    """
    names = list(corpora or [])
    if len(names) > 1 and len(names) != len(data):
        raise CorpusError(f"--corpus given {len(names)} times for {len(data)} DATA; give it once or once per DATA")
    if not data:
        return load_source(None, None if not names or names[0] == AUTO else names[0], progress=progress)
    records: list[Utterance] = []
    seen: dict[str, int] = {}
    for k, d in enumerate(data):
        name = names[k] if len(names) > 1 else names[0] if names else None
        recs = load_source(d, None if name == AUTO else name, progress=progress)
        corpus = recs[0].corpus if recs else ""
        seen[corpus] = seen.get(corpus, 0) + 1
        if seen[corpus] > 1:
            recs = [dataclasses.replace(r, corpus=f"{corpus}-{seen[corpus]}") for r in recs]
        records += recs
    return records


def leave_out(records: Sequence[Utterance], emotions: str) -> list[Utterance]:
    """``records`` without the clips of ``emotions`` (comma-separated names: ``voxemo train --leave-out``).

    Raises
    ------
    ConfigError
        A name that is no emotion voxemo knows.
    """

    drop = {e.strip() for e in emotions.split(",") if e.strip()}
    unknown = sorted(drop - set(EMOTIONS + EXTRA_EMOTIONS))
    if unknown:
        raise ConfigError(f"--leave-out: unknown emotion(s) {', '.join(unknown)} (have: "
                          f"{', '.join(EMOTIONS + EXTRA_EMOTIONS)})")
    return [r for r in records if r.emotion not in drop]
