"""Fitting and judging calibration: a softmax temperature fitted on held-out window logits, cross-fitted over folds
(no fold's speakers influence its own T), and the metrics that say whether it worked: ECE, NLL, Brier score and
reliability tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from voxemo.inference.calibration import LIMIT, TINY, clip_log_proba

N_BINS = 15


def fit_temperature(window_logits: Sequence[np.ndarray] | np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of ``labels`` (bounded search over ``log T``).

    Parameters
    ----------
    window_logits : np.ndarray (n, n_classes), or sequence of (n_windows_i, n_classes)
        One row of logits per sample, or every window's logits per clip (windows are averaged after scaling,
        as at prediction).
    labels : np.ndarray of int, shape (n,)

    Returns
    -------
    float
        ``T`` in ``[1/100, 100]``.

    Examples
    --------
    Samples drawn from ``softmax(z / 2)`` but reported as ``softmax(z)`` are over-confident; the fit finds T ≈ 2:

    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(0, 3, size=(20000, 4))
    >>> p = np.exp(log_softmax(z / 2, axis=1))
    >>> y = (p.cumsum(1) > rng.random((20000, 1))).argmax(1)
    >>> round(fit_temperature(z, y), 1)
    2.0
    """
    labels = np.asarray(labels, dtype=np.int64)
    wins = [np.atleast_2d(w) for w in window_logits] if not isinstance(window_logits, np.ndarray) \
        else list(window_logits[:, None, :])
    if len(wins) != len(labels):
        raise ValueError(f"{len(wins)} samples but {len(labels)} labels")
    if not len(labels):
        raise ValueError("cannot fit a temperature on no samples")
    if all(len(w) == 1 for w in wins):  # the common case, vectorised
        z = np.concatenate(wins).astype(np.float64)

        def nll(log_t: float) -> float:
            return float(-np.mean(log_softmax(z / np.exp(log_t), axis=1)[np.arange(len(labels)), labels]))
    else:

        def nll(log_t: float) -> float:
            return float(-np.mean(clip_log_proba(wins, float(np.exp(log_t)))[np.arange(len(labels)), labels]))

    res = minimize_scalar(nll, bounds=(-np.log(LIMIT), np.log(LIMIT)), method="bounded",
                          options={"xatol": 1e-5})
    return float(np.exp(res.x))


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = N_BINS) -> float:
    """ECE: the sample-weighted mean gap between accuracy and confidence over ``n_bins`` equal-width bins.

    A prediction's confidence is its top probability; bin b holds confidences in ``((b-1)/n_bins, b/n_bins]``.
    ``ECE = sum_b |B_b|/n * |acc(B_b) - conf(B_b)|`` (Naeini et al., 2015; Guo et al., 2017).

    Examples
    --------
    Four predictions at confidence 0.9 of which two are right: a gap of 0.4.

    >>> p = np.array([[0.9, 0.1]] * 4)
    >>> round(expected_calibration_error(p, np.array([0, 0, 1, 1])), 6)
    0.4
    >>> expected_calibration_error(np.array([[1.0, 0.0]]), np.array([0]))
    0.0
    """
    table = reliability_table(probs, labels, n_bins)
    n = sum(row["n"] for row in table)
    return float(sum(row["n"] / n * abs(row["accuracy"] - row["confidence"]) for row in table)) if n else 0.0


def reliability_table(probs: np.ndarray, labels: np.ndarray, n_bins: int = N_BINS) -> list[dict[str, float]]:
    """Per confidence bin (non-empty ones only): its range, count, mean confidence and accuracy."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    # bin b holds (b/n, (b+1)/n]; a confidence of exactly 0 (impossible for a softmax) would go to bin 0
    bins = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            rows.append({"low": b / n_bins, "high": (b + 1) / n_bins, "n": int(mask.sum()),
                         "confidence": float(conf[mask].mean()), "accuracy": float(correct[mask].mean())})
    return rows


def negative_log_likelihood(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean ``-log p(true class)`` (probabilities clipped at 1e-12).

    >>> round(negative_log_likelihood(np.array([[0.5, 0.5], [0.25, 0.75]]), np.array([0, 1])), 4)
    0.4904
    """
    probs = np.asarray(probs, dtype=np.float64)
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(labels)), np.asarray(labels)], TINY, None))))


def brier_score(probs: np.ndarray, labels: np.ndarray) -> float:
    """Multi-class Brier score: mean over samples of ``sum_k (p_k - [k == y])**2`` (0 is perfect, 2 the worst).

    >>> brier_score(np.array([[1.0, 0.0], [0.5, 0.5]]), np.array([0, 1]))
    0.25
    """
    probs = np.asarray(probs, dtype=np.float64)
    onehot = np.eye(probs.shape[1])[np.asarray(labels)]
    return float(np.mean(np.sum((probs - onehot) ** 2, axis=1)))


def calibration_metrics(probs: np.ndarray, labels: np.ndarray, n_bins: int = N_BINS) -> dict[str, float]:
    """ECE, NLL and Brier score of clip probabilities."""
    return {"ece": expected_calibration_error(probs, labels, n_bins), "nll": negative_log_likelihood(probs, labels),
            "brier": brier_score(probs, labels)}


def window_logits(window_probs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Log-probabilities of windows: logits up to a per-row constant, which temperature scaling ignores."""
    return [np.log(np.clip(np.asarray(p, dtype=np.float64), TINY, None)) for p in window_probs]


def cross_fit(fold_logits: Sequence[Sequence[np.ndarray]], fold_labels: Sequence[np.ndarray],
              n_bins: int = N_BINS) -> dict[str, Any]:
    """Calibrate each fold with a temperature fitted on the *other* folds' out-of-fold predictions.

    Under ``actor-6fold`` the other folds' test clips are all other speakers than fold k's, so fold k's test
    speakers (and their labels) never touch ``T_k``. The other folds' predictions come from other models of the
    same recipe (each trained without its own test speakers), so ``T_k`` estimates how over-confident that recipe
    is on unseen speakers.

    Parameters
    ----------
    fold_logits : per fold, a sequence of (n_windows_i, n_classes) window logits per test clip
    fold_labels : per fold, np.ndarray (n_test,) of true class indices

    Returns
    -------
    dict
        ``folds``: per fold its temperature and metrics before/after; ``pooled``: metrics before/after over all
        test clips; ``temperature``: T fitted on all folds together (what a model of this recipe would ship);
        ``calibrated_probs``: per fold the calibrated clip probabilities; ``method``.
    """
    if len(fold_logits) < 2:
        raise ValueError("cross-fitting needs at least 2 folds")
    before_all, after_all, labels_all, folds = [], [], [], []
    for k, (logits, labels) in enumerate(zip(fold_logits, fold_labels)):
        other = [w for j, f in enumerate(fold_logits) if j != k for w in f]
        other_y = np.concatenate([y for j, y in enumerate(fold_labels) if j != k])
        t = fit_temperature(other, other_y)
        before = np.exp(clip_log_proba(logits))
        after = np.exp(clip_log_proba(logits, t))
        folds.append({"temperature": t, "before": calibration_metrics(before, labels, n_bins),
                      "after": calibration_metrics(after, labels, n_bins), "calibrated_probs": after})
        before_all.append(before)
        after_all.append(after)
        labels_all.append(np.asarray(labels))
    y = np.concatenate(labels_all)
    before, after = np.concatenate(before_all), np.concatenate(after_all)
    return {
        "method": "temperature scaling; fold k's T fitted (min NLL) on the other folds' out-of-fold test predictions",
        "n_bins": n_bins,
        "temperature": fit_temperature([w for f in fold_logits for w in f], y),
        "folds": [{k: v for k, v in f.items() if k != "calibrated_probs"} for f in folds],
        "calibrated_probs": [f["calibrated_probs"] for f in folds],
        "pooled": {"before": calibration_metrics(before, y, n_bins), "after": calibration_metrics(after, y, n_bins)},
        "reliability": {"before": reliability_table(before, y, n_bins), "after": reliability_table(after, y, n_bins)},
    }


def evaluate_folds(fold_window_probs: Sequence[Sequence[np.ndarray]], fold_labels: Sequence[np.ndarray],
                   n_bins: int = N_BINS) -> tuple[dict[str, Any], list[np.ndarray] | None]:
    """Calibration section of an evaluation: :func:`cross_fit` over the folds' window probabilities when there
    are at least two folds; with one split (the ``random`` protocol) there is nothing held out to fit a
    temperature on without its test clips, so only the uncalibrated metrics are reported.

    Returns
    -------
    (dict, list or None)
        The JSON-ready summary, and per fold the calibrated clip probabilities (None with one split).
    """
    logits = [window_logits(w) for w in fold_window_probs]
    if len(logits) >= 2:
        cal = cross_fit(logits, fold_labels, n_bins)
        return {k: v for k, v in cal.items() if k != "calibrated_probs"}, cal["calibrated_probs"]
    y = np.concatenate([np.asarray(v) for v in fold_labels])
    before = np.exp(clip_log_proba([w for f in logits for w in f]))
    return {"method": "none: a single split leaves no held-out predictions to fit a temperature on",
            "n_bins": n_bins, "pooled": {"before": calibration_metrics(before, y, n_bins)},
            "reliability": {"before": reliability_table(before, y, n_bins)}}, None


def holdout_fit(window_logits_: Sequence[np.ndarray], labels: np.ndarray, n_bins: int = N_BINS) -> dict[str, Any]:
    """Fit a temperature on held-out predictions (the study's validation speakers) and report its effect there."""
    labels = np.asarray(labels)
    t = fit_temperature(window_logits_, labels)
    before = np.exp(clip_log_proba(window_logits_))
    after = np.exp(clip_log_proba(window_logits_, t))
    return {"temperature": t, "n": int(len(labels)), "before": calibration_metrics(before, labels, n_bins),
            "after": calibration_metrics(after, labels, n_bins)}
