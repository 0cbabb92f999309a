"""Cross-validation of the CNN recipe under a protocol (:mod:`voxemo.experiment.splits`): one model trained and tested
per split, metrics per fold and pooled, calibration.

``speaker-6fold`` (``actor-6fold`` on RAVDESS) is speaker-independent: fold k (0..5) tests the k-th sixth of the
speakers (RAVDESS actors 4k+1 … 4k+4) and trains on the others for the recipe's fixed number of epochs
(``TrainConfig.epochs``); nothing about the test speakers, not even an epoch count, is chosen by looking at them.
``random`` is a stratified 80/20 clip split that lets the same speakers appear on both sides; it is kept only to
show how much such a leaking split inflates accuracy. Normalisation statistics
are fitted inside each training set.

Calibration (:mod:`voxemo.experiment.calibration`): under the speaker folds, fold k's test probabilities are also
reported after temperature scaling with a T fitted on the other five folds' out-of-fold test predictions
(cross-fitting: all other speakers, so fold k's test speakers never influence its T), with ECE, NLL and Brier score
before and after and a reliability diagram. The single ``random`` split has nothing held out to fit on and
reports uncalibrated values.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix

from voxemo.core.config import Config
from voxemo.core.labels import EMOTIONS
from voxemo.core.parallel import pmap, worker_count
from voxemo.core.records import Utterance
from voxemo.dsp.scoring import window_probabilities
from voxemo.experiment.calibration import evaluate_folds
from voxemo.experiment.crosscorpus import adapt_to
from voxemo.experiment.metrics import scores
from voxemo.experiment.results import (
    Evaluation,
    FoldJob,
    FoldPrediction,
    FoldResult,
    FoldRunner,
    Scores,
    Summary,
)
from voxemo.experiment.splits import make_splits
from voxemo.nn.train import predict_segments, train_model


def fit_and_test(job: FoldJob) -> FoldResult:
    """Train on one split's training (and validation) clips; return the fold's result with its test probabilities.

    A module-level function taking one :class:`~voxemo.experiment.results.FoldJob`, so that process pools can run
    splits side by side; the study's variant comparison uses it too (with the validation clips as its test set).
    """
    return _fit(job, adapt=False)


def fit_and_test_adapted(job: FoldJob) -> FoldResult:
    """:func:`fit_and_test`, with the fold's model adapted without labels to its test clips' audio before it
    predicts them (:func:`voxemo.experiment.crosscorpus.adapt_to`): the protocol of a user who adapts to the
    recordings being scored."""
    return _fit(job, adapt=True)


def _fit(job: FoldJob, *, adapt: bool) -> FoldResult:
    config, n_classes = job.config, job.n_classes
    start = time.perf_counter()
    val_x = list(job.val_x)
    res = train_model(job.train_x, job.train_y, n_classes, config, val_specs=val_x or None,
                      val_labels=job.val_y if val_x else None, aug_specs=job.train_aug, weights=job.weights,
                      speakers=job.speakers, threads=job.threads, progress=False, desc=job.name)
    model = res.model
    if adapt:

        model = adapt_to(res.model, job.train_x, [], job.test_x, config).model
    window_probs = window_probabilities(job.test_x, config, lambda x: predict_segments(model, x))
    probs = np.stack([w.mean(axis=0) for w in window_probs]) if window_probs else np.zeros((0, n_classes))
    s = scores(job.test_y, probs.argmax(1), n_classes)
    return FoldResult(job.name, len(job.train_x), len(val_x), len(job.test_x), best_epoch=res.best_epoch,
                      epochs_run=len(res.history), seconds=time.perf_counter() - start, accuracy=s["accuracy"],
                      uar=s["uar"], macro_f1=s["macro_f1"], history=tuple(res.history), probs=probs,
                      window_probs=tuple(window_probs))


def evaluate(
    records: Sequence[Utterance],
    specs: Sequence[Any],
    config: Config,
    protocol: str = "actor-6fold",
    *,
    labels: Sequence[str] = EMOTIONS,
    aug_specs: Sequence[Sequence[np.ndarray]] | None = None,
    jobs: int = 0,
    threads: int = 1,
    progress: bool = True,
    fit: Callable[[FoldJob], FoldResult] = fit_and_test,
    test_specs: Sequence[Any] | None = None,
    runner: FoldRunner | None = None,
) -> Evaluation:
    """Train and test one model per split; returns metrics per fold, mean ± std, the summed confusion
    matrix, per-clip predictions and calibration. Splits train side by side in ``jobs`` processes (0 = one per
    core), each with ``threads`` torch threads (1: the same numbers on any machine). ``aug_specs`` (augmented
    copies per record) are given to each split's training clips only. ``test_specs`` (one per record, e.g. through
    a simulated telephone line) replace ``specs`` for the test clips of every split.
    ``specs`` are the clips' spectrograms, or whatever ``fit`` takes in their place.
    ``fit`` trains and tests one split (a module-level function taking a :class:`FoldJob` and returning a
    :class:`FoldResult` with its ``probs``, optionally with every test window's probabilities in
    ``window_probs``); :func:`voxemo.experiment.baseline.fit_svm_and_test` evaluates the eGeMAPS + SVM baseline
    under the same protocols.
    ``runner`` runs ``fit`` on every split's job and returns the results in order, in place of the local process
    pool: :func:`voxemo.experiment.distributed.ray_fold_runner` runs them on a Ray cluster, with the same results.
    """
    labels = list(labels)
    y = np.array([labels.index(r.emotion) for r in records])
    splits = make_splits(records, protocol, config)
    workers = worker_count(len(splits), jobs)
    take = lambda ix: [specs[i] for i in ix]  # noqa: E731
    tested = test_specs if test_specs is not None else specs
    work = [FoldJob(s.name, take(s.train), y[s.train], take(s.val), y[s.val], [tested[i] for i in s.test], y[s.test],
                    len(labels),
                    config, train_aug=[aug_specs[i] for i in s.train] if aug_specs else None,
                    speakers=[records[i].speaker for i in s.train], threads=threads)
            for s in splits]
    if runner is not None:
        outcomes = runner(fit, work)
    else:
        outcomes = pmap(fit, work, jobs=workers, desc=protocol, progress=progress, chunksize=1, unit="fold",
                        start_method="spawn")
    # a fit without window probabilities (one window per clip) is calibrated on its clip probabilities
    calibration, calibrated = evaluate_folds([fold.window_probs or [p[None] for p in fold.probs]
                                              for fold in outcomes], [y[s.test] for s in splits])
    folds, predictions = [], []
    for k, (split, fold) in enumerate(zip(splits, outcomes)):
        speakers = sorted({records[i].speaker for i in split.test}) if protocol != "random" else []
        folds.append(replace(fold, test_speakers=tuple(speakers)))
        for j, (i, pr) in enumerate(zip(split.test, fold.probs)):
            r, p = records[i], int(pr.argmax())
            predictions.append(FoldPrediction(r.path, r.speaker, r.gender, r.intensity, r.emotion, labels[p],
                                              split.name, float(pr[p]),
                                              float(calibrated[k][j, p]) if calibrated else None))
    true = np.array([labels.index(p.emotion) for p in predictions])
    pred = np.array([labels.index(p.predicted) for p in predictions])
    return Evaluation(protocol=protocol, labels=tuple(labels), folds=tuple(folds), summary=Summary.of(folds),
                      pooled=Scores.from_dict(scores(true, pred, len(labels))),
                      confusion=confusion_matrix(true, pred, labels=range(len(labels))),
                      predictions=tuple(predictions), calibration=calibration, config=config)
