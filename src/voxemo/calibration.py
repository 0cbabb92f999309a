"""Calibrated confidences: temperature scaling of window logits, and the metrics that say whether it worked.

A network's softmax is often over-confident on new speakers. Temperature scaling (Guo et al., 2017) divides the
logits by one scalar ``T`` fitted by minimising the negative log-likelihood of held-out predictions; ``T > 1``
softens the probabilities, ``T < 1`` sharpens them, and the most probable class never changes, so accuracy is
unaffected. voxemo scales each window's logits and then averages the window probabilities of a clip, exactly as
prediction does, so ``T`` is fitted on that same clip-level output.

Both inference backends return probabilities, not logits. ``log p`` differs from the logits only by a constant
per row, which softmax ignores, so ``softmax(log p / T)`` *is* ``softmax(z / T)``: the scaling is applied to
probabilities (:func:`temperature_scale`) and needs nothing from the network.

A model folder stores its temperature in ``calibration.json`` (``{"temperature": T, ...}`` plus how and on what
it was fitted); folders without the file load with ``T = 1`` (no change). All functions here are pure.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, logsumexp

from .config import Config
from .errors import ModelError
from .features import pad_value, segment_frames, windows

CALIBRATION = "calibration.json"
N_BINS = 15
#: Probabilities are clipped here before taking logs (float32 softmax underflows to 0 for hopeless classes).
TINY = 1e-12
#: Temperatures are searched in [1/LIMIT, LIMIT].
LIMIT = 100.0


def temperature_scale(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities of logits divided by ``temperature``, computed from the probabilities themselves.

    Parameters
    ----------
    probs : np.ndarray, shape (n, n_classes)
        Softmax outputs (rows sum to 1).
    temperature : float
        ``T > 0``; 1 returns ``probs`` unchanged.

    Returns
    -------
    np.ndarray, shape (n, n_classes), same dtype as ``probs``.

    Examples
    --------
    >>> p = np.array([[0.7, 0.2, 0.1]])
    >>> temperature_scale(p, 1.0).round(3).tolist()
    [[0.7, 0.2, 0.1]]
    >>> temperature_scale(p, 1e6).round(3).tolist()  # infinitely hot: uniform
    [[0.333, 0.333, 0.333]]
    >>> temperature_scale(p, 0.5).round(3).tolist()  # squares, renormalised
    [[0.907, 0.074, 0.019]]
    """
    if not temperature > 0:
        raise ValueError(f"temperature={temperature!r} must be positive")
    probs = np.asarray(probs)
    if temperature == 1.0:
        return probs
    logits = np.log(np.clip(probs.astype(np.float64), TINY, None)) / temperature
    return np.exp(log_softmax(logits, axis=-1)).astype(probs.dtype)


def clip_log_proba(window_logits: Sequence[np.ndarray], temperature: float = 1.0) -> np.ndarray:
    """Log of each clip's mean window probability after scaling its window logits by ``1 / temperature``.

    Parameters
    ----------
    window_logits : sequence of np.ndarray, each (n_windows_i, n_classes)
        Logits (or log-probabilities) of every window of each clip.

    Returns
    -------
    np.ndarray, shape (n_clips, n_classes), float64.
    """
    out = []
    for z in window_logits:
        logp = log_softmax(np.asarray(z, dtype=np.float64) / temperature, axis=-1)
        out.append(logsumexp(logp, axis=0) - np.log(len(logp)))
    return np.stack(out) if out else np.zeros((0, 0))


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


def window_probabilities(specs: Sequence[np.ndarray], config: Config,
                         segment_proba: Callable[[np.ndarray], np.ndarray]) -> list[np.ndarray]:
    """Every window's probabilities per clip, windows cut as at prediction
    (:func:`voxemo.predict.average_windows` returns their means).

    Parameters
    ----------
    specs : sequence of np.ndarray, each (n_mels, n_frames_i)
    config : Config
        Gives the segment length and the padding value.
    segment_proba : callable
        Fixed-length segments (n, n_mels, n_frames) -> probabilities (n, n_classes).

    Returns
    -------
    list of np.ndarray, each (n_windows_i, n_classes); their means are the uncalibrated clip probabilities.
    """
    n_frames, fill = segment_frames(config.audio, config.features), pad_value(config.features)
    wins = [windows(s, n_frames, fill=fill) for s in specs]
    if not wins:
        return []
    probs = segment_proba(np.concatenate(wins))
    bounds = np.cumsum([0] + [len(w) for w in wins])
    return [probs[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def window_logits(window_probs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Log-probabilities of windows: logits up to a per-row constant, which temperature scaling ignores."""
    return [np.log(np.clip(np.asarray(p, dtype=np.float64), TINY, None)) for p in window_probs]


def cross_fit(fold_logits: Sequence[Sequence[np.ndarray]], fold_labels: Sequence[np.ndarray],
              n_bins: int = N_BINS) -> dict[str, Any]:
    """Calibrate each fold with a temperature fitted on the *other* folds' out-of-fold predictions.

    Under ``actor-6fold`` the other folds' test clips are all other speakers than fold k's, so fold k's test
    actors (and their labels) never touch ``T_k``. The other folds' predictions come from other models of the
    same recipe (each trained without its own test actors), so ``T_k`` estimates how over-confident that recipe
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
    """Fit a temperature on held-out predictions (the study's validation actors) and report its effect there."""
    labels = np.asarray(labels)
    t = fit_temperature(window_logits_, labels)
    before = np.exp(clip_log_proba(window_logits_))
    after = np.exp(clip_log_proba(window_logits_, t))
    return {"temperature": t, "n": int(len(labels)), "before": calibration_metrics(before, labels, n_bins),
            "after": calibration_metrics(after, labels, n_bins)}


# ---- model folders -------------------------------------------------------------------------------------------
def save_calibration(model_dir: str | os.PathLike[str], calibration: dict[str, Any]) -> Path:
    """Write ``calibration.json`` (must hold a positive ``temperature``) into a model folder."""
    t = calibration.get("temperature")
    if not isinstance(t, (int, float)) or not t > 0:
        raise ModelError(f"calibration temperature={t!r} must be a positive number")
    path = Path(model_dir) / CALIBRATION
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(calibration, indent=2))
    os.replace(tmp, path)
    return path


def load_temperature(model_dir: str | os.PathLike[str]) -> float:
    """The temperature stored in a model folder's ``calibration.json``; 1.0 when the folder has none."""
    path = Path(model_dir) / CALIBRATION
    if not path.is_file():
        return 1.0
    try:
        t = json.loads(path.read_text())["temperature"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{path}: unreadable calibration ({type(exc).__name__}: {exc})") from None
    if not isinstance(t, (int, float)) or isinstance(t, bool) or not 0 < t < float("inf"):
        raise ModelError(f"{path}: temperature={t!r} must be a positive number")
    return float(t)


def calibration_markdown(cal: dict[str, Any], fold_names: Sequence[str]) -> list[str]:
    """The report.md section for an :func:`evaluate_folds` summary (lines)."""
    p = cal["pooled"]
    if "after" not in p:
        b = p["before"]
        return ["## Calibration\n", f"Uncalibrated ({cal['method']}): ECE {b['ece']:.3f} ({cal['n_bins']} bins), "
                f"NLL {b['nll']:.3f}, Brier {b['brier']:.3f}.\n", "![reliability](reliability.png)\n"]
    lines = ["## Calibration\n",
             f"Method: {cal['method']} (window logits scaled, then averaged per clip). ECE uses "
             f"{cal['n_bins']} equal-width confidence bins. Accuracy is unchanged (the most probable class never "
             "changes).\n",
             "| | ECE | NLL | Brier |", "|---|---|---|---|",
             *(f"| {name} | {p[name]['ece']:.3f} | {p[name]['nll']:.3f} | {p[name]['brier']:.3f} |"
               for name in ("before", "after")),
             "", "| fold | T | ECE before | ECE after | NLL before | NLL after |", "|---|---|---|---|---|---|"]
    for name, f in zip(fold_names, cal["folds"]):
        lines.append(f"| {name} | {f['temperature']:.3f} | {f['before']['ece']:.3f} | {f['after']['ece']:.3f} | "
                     f"{f['before']['nll']:.3f} | {f['after']['nll']:.3f} |")
    lines += [f"\nT fitted on all folds' test predictions together: {cal['temperature']:.3f}.\n",
              "![reliability](reliability.png)\n"]
    return lines
