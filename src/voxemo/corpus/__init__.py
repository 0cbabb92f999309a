"""Corpus loaders: each turns a corpus' own layout and naming convention into :class:`~voxemo.core.records.Utterance`.

:func:`load_corpus` is the one entry point (it detects the corpus when not named); the per-corpus modules
(:mod:`.ravdess`, :mod:`.cremad`, :mod:`.tess`, :mod:`.savee`, :mod:`.emodb`, :mod:`.emovo`, :mod:`.nemo`,
:mod:`.folders`, :mod:`.manifest`) document each naming convention and hold its explicit label table.
"""

from __future__ import annotations

from voxemo.corpus.ravdess import RavdessName, load_ravdess, parse_ravdess_name
from voxemo.corpus.registry import CORPORA, detect_corpus, load_corpus
from voxemo.corpus.summary import corpus_summary, format_summary

__all__ = ["CORPORA", "RavdessName", "corpus_summary", "detect_corpus", "format_summary", "load_corpus",
           "load_ravdess", "parse_ravdess_name"]
