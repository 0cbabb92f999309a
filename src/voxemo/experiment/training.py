"""The training recipe's steps: both output-bias variants compared on held-out speakers, the choice applied, and the
final model retrained on every clip for the chosen number of epochs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from voxemo.core.config import Config
from voxemo.core.errors import CorpusError
from voxemo.core.labels import EMOTIONS
from voxemo.core.parallel import pmap, worker_count
from voxemo.core.records import Utterance
from voxemo.experiment.calibration import holdout_fit, window_logits
from voxemo.experiment.evaluate import fit_and_test
from voxemo.experiment.multicorpus import corpus_weights, unique_speakers, validation_speakers
from voxemo.experiment.results import FoldJob, VariantComparison, VariantResult
from voxemo.inference.torch_backend import EmotionClassifier
from voxemo.nn.adapt import measure_source
from voxemo.nn.train import train_model


def compare_variants(records: Sequence[Utterance], specs: Sequence[np.ndarray], config: Config, *,
                     labels: Sequence[str] = EMOTIONS, aug_specs: Sequence[Sequence[np.ndarray]] | None = None,
                     jobs: int = 0, threads: int = 1, progress: bool = True) -> VariantComparison:
    """Train the CNN with and without output-bias initialisation on the same speaker split and compare first-epoch
    and best validation loss/accuracy. The better variant has the lower best validation loss. Both train side by
    side in ``jobs`` processes (0 = one per core).

    With several corpora (:attr:`Utterance.corpus`), speakers are made unique per corpus, validation speakers
    come from every corpus (:func:`~voxemo.experiment.multicorpus.validation_speakers`) and training samples each corpus
    equally (:func:`~voxemo.experiment.multicorpus.corpus_weights`)."""
    labels = list(labels)
    records = unique_speakers(records)
    val_spk = validation_speakers(records, config.train.val_speakers, config.train.seed)
    if not val_spk:
        raise CorpusError(f"training needs speakers to hold out for validation, but every corpus has only one "
                          f"({', '.join(sorted({r.speaker for r in records}))})")
    is_val = np.array([r.speaker in val_spk for r in records])
    y = np.array([labels.index(r.emotion) for r in records])
    take = lambda mask: [s for s, m in zip(specs, mask) if m]  # noqa: E731
    train_aug = [a for a, m in zip(aug_specs, ~is_val) if m] if aug_specs else None
    weights = corpus_weights(records)
    train_w = weights[~is_val] if weights is not None else None
    train_speakers = [r.speaker for r, m in zip(records, ~is_val) if m]
    workers = worker_count(2, jobs)
    work = []
    for bias_init in (True, False):
        cfg = config.replace(model=config.model.replace(bias_init=bias_init))
        work.append(FoldJob("bias_init" if bias_init else "no_bias_init", take(~is_val), y[~is_val], take(is_val),
                            y[is_val], take(is_val), y[is_val], len(labels), cfg, train_aug=train_aug,
                            weights=train_w, speakers=train_speakers, threads=threads))
    outcomes = pmap(fit_and_test, work, jobs=workers, desc="variants", progress=progress, chunksize=1,
                    unit="variant", start_method="spawn")
    variants, window_probs = {}, {}
    for job, fold in zip(work, outcomes):
        window_probs[job.name] = fold.window_probs or ()
        history = fold.history or ()
        best_epoch = int(fold.best_epoch or 0)
        first, best = history[0], history[best_epoch - 1]
        variants[job.name] = VariantResult(
            bias_init=job.config.model.bias_init, first_epoch_val_loss=first["val_loss"],
            first_epoch_val_accuracy=first["val_accuracy"], best_epoch=best_epoch, best_val_loss=best["val_loss"],
            best_val_accuracy=best["val_accuracy"], history=history)
    chosen = min(variants, key=lambda k: (variants[k].best_val_loss, -variants[k].best_val_accuracy))
    # The final model's softmax temperature: fitted on the chosen variant's predictions for the held-out validation
    # speakers (the same clips chose its best epoch, so T is fitted on slightly optimistic predictions).
    calibration = {**holdout_fit(window_logits(window_probs[chosen]), y[is_val]),
                   "fitted_on": f"validation speakers {', '.join(val_spk)} ({chosen} variant, best epoch)"}
    return VariantComparison(val_speakers=tuple(val_spk), variants=variants, chosen=chosen,
                             bias_init=variants[chosen].bias_init, calibration=calibration)


def apply_choice(config: Config, variants: VariantComparison) -> tuple[Config, int]:
    """The config with the chosen variant's output-bias setting, and that variant's best validation epoch: the
    epoch count for retraining on all clips."""
    chosen = variants.variants[variants.chosen]
    return config.replace(model=config.model.replace(bias_init=chosen.bias_init)), int(chosen.best_epoch)


def train_final(records: Sequence[Utterance], specs: Sequence[np.ndarray], config: Config, epochs: int, *,
                labels: Sequence[str] = EMOTIONS, aug_specs: Sequence[Sequence[np.ndarray]] | None = None,
                threads: int = 1, progress: bool = True,
                calibration: Mapping[str, Any] | None = None) -> EmotionClassifier:
    """Retrain on every clip for a fixed number of epochs (the best epoch found on held-out speakers); several
    corpora are sampled equally (:func:`~voxemo.experiment.multicorpus.corpus_weights`). ``calibration`` (from
    :func:`compare_variants`) gives the model its softmax temperature, saved as ``calibration.json``. The model keeps
    its training speech's normalisation moments (:func:`~voxemo.nn.adapt.measure_source`) for adaptation."""
    labels = list(labels)
    y = np.array([labels.index(r.emotion) for r in records])
    res = train_model(specs, y, len(labels), config, epochs=epochs, aug_specs=aug_specs,
                      weights=corpus_weights(records), speakers=[r.speaker for r in unique_speakers(records)],
                      threads=threads, progress=progress, desc="final")
    clf = EmotionClassifier(res.model, config, labels)
    clf.source_stats = measure_source(res.model, specs)  # what adaptation compares a new domain with
    if calibration:
        clf.temperature, clf.calibration = float(calibration["temperature"]), dict(calibration)
    return clf
