"""Cross-validation of the CNN recipe under a protocol (:mod:`voxemo.experiment.splits`): one model trained and tested
per split, metrics per fold and pooled, calibration.

``actor-6fold`` is speaker-independent: fold k (0..5) tests actors 4k+1 … 4k+4 and trains on the other 20 for
the recipe's fixed number of epochs (``TrainConfig.epochs``); nothing about the test actors, not even an epoch
count, is chosen by looking at them. ``random`` is a stratified 80/20 clip split that lets the same actors appear
on both sides; it is kept only to show how much such a leaking split inflates accuracy. Normalisation statistics
are fitted inside each training set.

Calibration (:mod:`voxemo.experiment.calibration`): under ``actor-6fold`` fold k's test probabilities are also
reported after temperature scaling with a T fitted on the other five folds' out-of-fold test predictions
(cross-fitting: all other speakers, so fold k's test actors never influence its T), with ECE, NLL and Brier score
before and after and a reliability diagram. The single ``random`` split has nothing held out to fit on and
reports uncalibrated values.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix

from voxemo.core.config import Config
from voxemo.core.labels import EMOTIONS
from voxemo.core.parallel import pmap, split_cores
from voxemo.core.records import Utterance
from voxemo.dsp.scoring import window_probabilities
from voxemo.experiment.calibration import evaluate_folds
from voxemo.experiment.metrics import scores
from voxemo.experiment.splits import make_splits
from voxemo.nn.train import predict_segments, train_model


def fit_and_test(job: tuple[Any, ...]) -> tuple[dict[str, Any], np.ndarray]:
    """Train on one split's training (and validation) clips; return the fold row and the test probabilities.

    A module-level function taking one tuple, so that process pools can run splits side by side; the study's
    variant comparison uses it too (with the validation clips as its test set). An optional tenth element holds
    the augmented copies of the training clips, an optional eleventh their sampling weights (multi-corpus), an
    optional twelfth their speakers (for ``train.speaker_adversary``).
    """
    name, train_x, train_y, val_x, val_y, test_x, test_y, n_classes, config, *rest = job
    train_aug, weights, speakers = (*rest, None, None, None)[:3]
    start = time.perf_counter()
    res = train_model(train_x, train_y, n_classes, config, val_specs=val_x or None, val_labels=val_y if val_x else None,
                      aug_specs=train_aug, weights=weights, speakers=speakers, progress=False, desc=name)
    window_probs = window_probabilities(test_x, config, lambda x: predict_segments(res.model, x))
    probs = np.stack([w.mean(axis=0) for w in window_probs]) if window_probs else np.zeros((0, n_classes))
    fold = {"fold": name, "n_train": len(train_x), "n_val": len(val_x), "n_test": len(test_x),
            "best_epoch": res.best_epoch, "epochs_run": len(res.history), "seconds": time.perf_counter() - start,
            **scores(test_y, probs.argmax(1), n_classes), "history": res.history, "window_probs": window_probs}
    return fold, probs


def evaluate(
    records: Sequence[Utterance],
    specs: Sequence[np.ndarray],
    config: Config,
    protocol: str = "actor-6fold",
    *,
    labels: Sequence[str] = EMOTIONS,
    aug_specs: Sequence[Sequence[np.ndarray]] | None = None,
    jobs: int = 0,
    progress: bool = True,
    fit: Callable[[tuple[Any, ...]], tuple[dict[str, Any], np.ndarray]] = fit_and_test,
) -> dict[str, Any]:
    """Train and test one model per split; returns metrics per fold, mean ± std, the summed confusion
    matrix, per-clip predictions and calibration. Splits train side by side in ``jobs`` processes (0 = one per
    core). ``aug_specs`` (augmented copies per record) are given to each split's training clips only.
    ``fit`` trains and tests one split (a module-level function taking :func:`fit_and_test`'s tuple and returning
    its ``(fold, probs)``, optionally with every test window's probabilities in ``fold["window_probs"]``);
    :func:`voxemo.experiment.baseline.fit_svm_and_test` evaluates the eGeMAPS + SVM baseline under the same protocols.
    """
    labels = list(labels)
    y = np.array([labels.index(r.emotion) for r in records])
    splits = make_splits(records, protocol, config)
    workers, threads = split_cores(len(splits), jobs)
    cfg = config if config.train.threads else config.replace(train=config.train.replace(threads=threads))
    take = lambda ix: [specs[i] for i in ix]  # noqa: E731
    work = [(s.name, take(s.train), y[s.train], take(s.val), y[s.val], take(s.test), y[s.test], len(labels), cfg,
             [aug_specs[i] for i in s.train] if aug_specs else None, None, [records[i].speaker for i in s.train])
            for s in splits]
    outcomes = pmap(fit, work, jobs=workers, desc=protocol, progress=progress, chunksize=1, unit="fold",
                    start_method="spawn")
    # a fit without window probabilities (one window per clip) is calibrated on its clip probabilities
    calibration, calibrated = evaluate_folds([fold.pop("window_probs", None) or [p[None] for p in probs]
                                              for fold, probs in outcomes], [y[s.test] for s in splits])
    folds, predictions = [], []
    for k, (split, (fold, probs)) in enumerate(zip(splits, outcomes)):
        fold["test_speakers"] = sorted({records[i].speaker for i in split.test}) if protocol != "random" else []
        folds.append(fold)
        for j, (i, pr) in enumerate(zip(split.test, probs)):
            r, p = records[i], int(pr.argmax())
            predictions.append({"path": r.path, "speaker": r.speaker, "gender": r.gender, "intensity": r.intensity,
                                "emotion": r.emotion, "predicted": labels[p], "fold": split.name,
                                "confidence": float(pr[p]),
                                "confidence_calibrated": float(calibrated[k][j, p]) if calibrated else None})
    true = np.array([labels.index(p["emotion"]) for p in predictions])
    pred = np.array([labels.index(p["predicted"]) for p in predictions])
    summary = {m: {"mean": float(np.mean([f[m] for f in folds])), "std": float(np.std([f[m] for f in folds]))}
               for m in ("accuracy", "uar", "macro_f1")}
    return {
        "protocol": protocol,
        "labels": labels,
        "folds": folds,
        "summary": summary,
        "pooled": scores(true, pred, len(labels)),
        "confusion": confusion_matrix(true, pred, labels=range(len(labels))).tolist(),
        "predictions": predictions,
        "calibration": calibration,
        "config": config.to_dict(),
    }
