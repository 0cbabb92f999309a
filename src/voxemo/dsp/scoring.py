"""Window scoring, written once: cut each clip's log-mel into the windows that cover it, score all windows
with any backend's segment function, and average them per clip.

Evaluation, calibration and every inference backend (torch and ONNX Runtime) go through these two functions, so
they all see exactly the same windows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from voxemo.core.config import Config
from voxemo.core.errors import ModelError
from voxemo.dsp.features import pad_value, segment_frames, windows

#: windows a network scores at once (a clip of up to 64 windows, about 100 s, in one call as before)
MAX_BATCH = 64


def average_windows(specs: Sequence[np.ndarray], config: Config, segment_proba: Callable[[np.ndarray], np.ndarray],
                    n_classes: int) -> np.ndarray:
    """Cut each spectrogram into the windows that cover it, score them all at once, average per clip.

    Shared by every inference backend, so torch and ONNX Runtime see exactly the same windows.

    Parameters
    ----------
    specs : sequence of np.ndarray, each (n_mels, n_frames_i)
    config : Config
        Gives the segment length and the padding value.
    segment_proba : callable
        Fixed-length segments (n, n_mels, n_frames) -> probabilities (n, n_classes).
    n_classes : int

    Returns
    -------
    np.ndarray, shape (n_clips, n_classes)
    """
    per_clip = window_probabilities(specs, config, segment_proba)
    if not per_clip:
        return np.zeros((0, n_classes), np.float32)
    return np.stack([w.mean(axis=0) for w in per_clip])


def window_probabilities(specs: Sequence[np.ndarray], config: Config,
                         segment_proba: Callable[[np.ndarray], np.ndarray]) -> list[np.ndarray]:
    """Every window's probabilities per clip, windows cut as at prediction
    (:func:`voxemo.dsp.scoring.average_windows` returns their means).

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
    wins = clip_windows(specs, config)
    if not wins:
        return []
    probs = score_windows(np.concatenate(wins) if len({w.shape for w in wins}) == 1 else
                          [w for ws in wins for w in ws], segment_proba)
    if not np.isfinite(probs).all():  # never an answer of NaN: a model that computes one is broken
        raise ModelError("the model's probabilities are not finite (NaN or inf): its weights or statistics are "
                         "broken; retrain or re-adapt it")
    bounds = np.cumsum([0] + [len(w) for w in wins])
    return [probs[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def clip_windows(specs: Sequence[np.ndarray], config: Config) -> list[np.ndarray]:
    """The windows prediction cuts from each log-mel: one array (n_windows_i, n_mels, frames_i) per clip (frames_i
    is the segment length, or shorter for a short clip when ``config.audio.pad_short`` is off)."""
    n_frames, fill = segment_frames(config.audio, config.features), pad_value(config.features)
    return [windows(s, n_frames, fill=fill, pad=config.audio.pad_short) for s in specs]


def score_windows(wins: np.ndarray | Sequence[np.ndarray], segment_fn: Callable[[np.ndarray], np.ndarray]
                  ) -> np.ndarray:
    """``segment_fn`` of windows in order: one call for an array of equal windows, else one call per length
    (windows of a length stacked), the rows put back in the input order."""
    if isinstance(wins, np.ndarray):
        if len(wins) <= MAX_BATCH:
            return segment_fn(wins)
        # a long recording's windows in batches: a network's activations for hundreds of windows at once are GBs
        return np.concatenate([segment_fn(wins[i : i + MAX_BATCH]) for i in range(0, len(wins), MAX_BATCH)])
    lengths = np.array([w.shape[-1] for w in wins])
    out: np.ndarray | None = None
    for length in np.unique(lengths):
        idx = np.flatnonzero(lengths == length)
        part = segment_fn(np.stack([wins[int(i)] for i in idx]))
        if out is None:
            out = np.zeros((len(wins), *part.shape[1:]), part.dtype)
        out[idx] = part
    return out if out is not None else np.zeros((0, 0), np.float32)
