"""Temperature scaling at prediction time: every window's logits divided by T before the window probabilities are
averaged, and clips' log-probabilities under a temperature (what fitting T minimises,
:mod:`voxemo.experiment.calibration`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import log_softmax, logsumexp

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
