"""Window scoring, written once: cut each clip's log-mel into the windows that cover it, score all windows
with any backend's segment function, and average them per clip.

Evaluation, calibration and every inference backend (torch and ONNX Runtime) go through these two functions, so
they all see exactly the same windows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from voxemo.core.config import Config
from voxemo.dsp.features import pad_value, segment_frames, windows


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
    n_frames, fill = segment_frames(config.audio, config.features), pad_value(config.features)
    wins = [windows(s, n_frames, fill=fill) for s in specs]
    if not wins:
        return []
    probs = segment_proba(np.concatenate(wins))
    bounds = np.cumsum([0] + [len(w) for w in wins])
    return [probs[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
