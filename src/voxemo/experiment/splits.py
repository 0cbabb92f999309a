"""Evaluation protocols: speaker-independent folds (``speaker-6fold``: fold k tests the k-th block of speakers in
id order; ``actor-6fold`` is its RAVDESS name, the name the published results use) and, for contrast only, the
leaking random clip split; and the choice of validation speakers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from voxemo.core.config import Config
from voxemo.core.errors import ConfigError
from voxemo.core.records import Utterance

#: the speaker-grouped six folds under both names
SPEAKER_FOLDS = ("actor-6fold", "speaker-6fold")
PROTOCOLS = (*SPEAKER_FOLDS, "random")


@dataclass(frozen=True)
class Split:
    """Indices into the record list for one fold."""

    name: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def pick_validation_speakers(records: Sequence[Utterance], candidates: Sequence[str], n: int, seed: int) -> list[str]:
    """Choose ``n`` validation speakers among ``candidates``, alternating genders where genders are known."""
    rng = np.random.default_rng(seed)
    gender = {r.speaker: r.gender for r in records}
    groups: dict[str | None, list[str]] = {}
    for s in sorted(set(candidates)):
        groups.setdefault(gender.get(s), []).append(s)
    for g in groups.values():
        rng.shuffle(g)
    chosen: list[str] = []
    while len(chosen) < min(n, len(set(candidates))):
        for key in sorted(groups, key=str):
            if groups[key] and len(chosen) < n:
                chosen.append(groups[key].pop())
    return sorted(chosen)


def speaker_folds(records: Sequence[Utterance], *, val_speakers: int, seed: int, n_folds: int = 6) -> list[Split]:
    """The speaker-independent folds: fold k tests the k-th block of ``n_speakers / n_folds`` speakers in id
    order, and ``val_speakers`` of the remaining speakers (0 for none) are held out for validation."""
    speakers = sorted({r.speaker for r in records}, key=lambda s: (len(s), s))
    if len(speakers) < n_folds:
        raise ConfigError(f"speaker-{n_folds}fold needs at least {n_folds} speakers, found {len(speakers)}")
    spk = np.array([r.speaker for r in records])
    per = len(speakers) / n_folds
    splits = []
    for k in range(n_folds):
        test_spk = speakers[round(k * per) : round((k + 1) * per)]
        rest = [s for s in speakers if s not in test_spk]
        val_spk = pick_validation_speakers(records, rest, val_speakers, seed + k)
        test = np.isin(spk, test_spk)
        val = np.isin(spk, val_spk)
        splits.append(Split(f"fold{k + 1}", np.flatnonzero(~test & ~val), np.flatnonzero(val), np.flatnonzero(test)))
    return splits


def random_split(records: Sequence[Utterance], *, seed: int, test_size: float = 0.2, val_size: float = 0.1) -> Split:
    """A stratified random clip split (the leaking protocol): same speakers in train, validation and test."""
    from sklearn.model_selection import train_test_split  # scikit-learn is imported only when this split is made

    idx = np.arange(len(records))
    labels = np.array([r.emotion for r in records])
    rest, test = train_test_split(idx, test_size=test_size, stratify=labels, random_state=seed)
    if val_size <= 0:
        return Split("random", np.sort(rest), np.array([], dtype=int), np.sort(test))
    train, val = train_test_split(rest, test_size=val_size / (1 - test_size), stratify=labels[rest], random_state=seed)
    return Split("random", np.sort(train), np.sort(val), np.sort(test))


def make_splits(records: Sequence[Utterance], protocol: str, config: Config) -> list[Split]:
    """The splits of ``protocol``; training folds keep every non-test clip (no validation part)."""
    if protocol in SPEAKER_FOLDS:
        return speaker_folds(records, val_speakers=0, seed=config.train.seed)
    if protocol == "random":
        return [random_split(records, seed=config.train.seed, val_size=0.0)]
    raise ConfigError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
