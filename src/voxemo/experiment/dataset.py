"""A corpus' features for an experiment: every record's log-mel (cached), unusable clips dropped and reported, and
the augmented copies that training uses.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from voxemo.core.config import Config
from voxemo.core.errors import CorpusError
from voxemo.core.records import Utterance
from voxemo.io.cache import extract_augmented, extract_many

log = logging.getLogger(__name__)


def load_features(records: Sequence[Utterance], config: Config, *, cache_dir: str | None = None, jobs: int = 0,
                  progress: bool = True,
                  channel: str = "wideband") -> tuple[list[Utterance], list[np.ndarray], list[str]]:
    """Features of every record (through a simulated ``channel``, for test conditions); records whose audio fails
    are dropped and their errors returned."""
    results = extract_many([r.path for r in records], config.audio, config.features, cache_dir=cache_dir, jobs=jobs,
                           progress=progress, channel=channel)
    kept, specs, errors = [], [], []
    for r, res in zip(records, results):
        if isinstance(res, str):
            errors.append(res)
        else:
            kept.append(r)
            specs.append(res)
    for e in errors:
        log.warning("skipped: %s", e)
    if not kept:
        raise CorpusError("no usable clips: every file failed to load (see the messages above)")
    return kept, specs, errors


def load_augmented(records: Sequence[Utterance], config: Config, *, cache_dir: str | None = None, jobs: int = 0,
                   progress: bool = True) -> list[list[np.ndarray]] | None:
    """``config.augment.copies`` augmented feature copies per record for training, or None when augmentation is
    off. A record whose copies fail (it loaded once already, so this is rare) trains on its original only."""
    if not config.augment.copies:
        return None
    results = extract_augmented([r.path for r in records], config.audio, config.features, config.augment,
                                cache_dir=cache_dir, jobs=jobs, progress=progress)
    for res in results:
        if isinstance(res, str):
            log.warning("augmentation skipped: %s", res)
    return [[] if isinstance(res, str) else res for res in results]
