"""What every inference backend shares: :class:`Classifier` holds everything but the network (preprocessing rebuilt
from the model's config, windowing and averaging, labels, temperature, results). Its subclasses only turn
fixed-length segments into probabilities: :class:`~voxemo.inference.torch_backend.EmotionClassifier` with torch,
:class:`~voxemo.inference.onnx_backend.OnnxClassifier` with ONNX Runtime.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from voxemo.core.config import Config
from voxemo.core.errors import AudioError, VoxemoError
from voxemo.dsp.features import extract
from voxemo.dsp.scoring import average_windows
from voxemo.inference.calibration import temperature_scale
from voxemo.inference.results import FileFailure, Prediction
from voxemo.io.audio import load_audio

AudioInput = str | os.PathLike[str] | np.ndarray


class Classifier:
    """What every backend shares: preprocessing from the config, windows, averaging, labels and results.

    A subclass implements :meth:`segment_proba`, the network alone.

    Attributes
    ----------
    classes_ : np.ndarray of str
        Emotion labels in the order of the probability columns.
    config : Config
        Preprocessing, architecture and training configuration the model was trained with.
    temperature : float
        Softmax temperature applied to every window's logits before averaging (1 = uncalibrated); every
        prediction path (predict, the service, the stream and the timeline) goes through :meth:`predict_proba`.
    calibration : dict
        How the temperature was fitted (saved as ``calibration.json``); empty when uncalibrated.
    """

    #: the runtime that runs the network ("torch" or "onnx")
    backend = ""

    def __init__(self, config: Config, classes: Sequence[str]) -> None:
        self.config = config
        self.classes_ = np.asarray(list(classes))
        self.temperature = 1.0
        self.calibration: dict[str, Any] = {}

    def segment_proba(self, x: np.ndarray) -> np.ndarray:
        """Probabilities for fixed-length log-mel segments: (n, n_mels, n_frames) -> (n, n_classes), float32."""
        raise NotImplementedError

    def calibrated_segment_proba(self, x: np.ndarray) -> np.ndarray:
        """:meth:`segment_proba` with the window logits divided by :attr:`temperature`."""
        return temperature_scale(self.segment_proba(x), self.temperature)

    # ---- prediction ---------------------------------------------------------------------------------------
    def features(self, x: AudioInput, sr: int | None = None) -> np.ndarray:
        """Log-mel spectrogram of a file path, or of an array with its sample rate ``sr`` in Hz."""
        a = self.config.audio
        if isinstance(x, np.ndarray):
            if sr is None:
                raise AudioError("array input needs its sample rate: pass sr=<Hz>")
            return extract(x, sr, a, self.config.features, name="array")
        y, file_sr = load_audio(x, max_duration=a.max_duration)
        return extract(y, file_sr, a, self.config.features, name=str(x))

    def predict_proba(self, x: AudioInput | Sequence[AudioInput], sr: int | None = None) -> np.ndarray:
        """Class probabilities: shape (n_classes,) for one input, (n_inputs, n_classes) for a list.

        An input is a file path or a NumPy signal of shape (n,) or (n, channels) with ``sr``. A clip longer
        than ``config.audio.duration`` is covered by overlapping windows whose probabilities are averaged.
        """
        single = isinstance(x, (str, os.PathLike, np.ndarray))
        items: list[AudioInput] = [x] if isinstance(x, (str, os.PathLike, np.ndarray)) else list(x)
        specs = [self.features(item, sr) for item in items]
        probs = average_windows(specs, self.config, self.calibrated_segment_proba, len(self.classes_))
        return probs[0] if single else probs

    def predict(self, x: AudioInput | Sequence[AudioInput], sr: int | None = None) -> str | np.ndarray:
        """Most probable emotion: a label for one input, an array of labels for a list."""
        probs = self.predict_proba(x, sr)
        return self.classes_[probs.argmax(-1)] if probs.ndim == 2 else str(self.classes_[int(probs.argmax())])

    def predict_result(self, path: str | os.PathLike[str]) -> Prediction | FileFailure:
        """One file's typed result: a :class:`~voxemo.inference.results.Prediction`, or a
        :class:`~voxemo.inference.results.FileFailure` with its one-line cause when voxemo cannot use the file."""
        try:
            probs = self.predict_proba(path)
        except VoxemoError as exc:
            return FileFailure(str(path), str(exc))
        best = int(probs.argmax())
        return Prediction(str(path), str(self.classes_[best]), round(float(probs[best]), 4),
                          {str(c): round(float(p), 4) for c, p in zip(self.classes_, probs)})

    def predict_file(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """The JSON-ready result for one file: path, emotion, confidence and every class' probability; on
        failure ``{"path": ..., "error": "<one line>"}`` (:meth:`predict_result` as a dict)."""
        return self.predict_result(path).to_dict()
