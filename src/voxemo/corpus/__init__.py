"""Corpus loaders: each turns a corpus' own layout and naming convention into :class:`~voxemo.records.Utterance`."""

from .ravdess import RavdessName, load_ravdess, parse_ravdess_name

__all__ = ["RavdessName", "load_ravdess", "parse_ravdess_name"]
