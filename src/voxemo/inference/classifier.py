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
from voxemo.dsp.speech import SpeechConfig, speech_presence
from voxemo.inference.calibration import temperature_scale
from voxemo.inference.results import FileFailure, FileResult, NoSpeech, Prediction, Uncertain
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
    min_confidence : float
        :meth:`predict_result` reports a clip whose top probability is below this as
        :class:`~voxemo.inference.results.Uncertain` (no emotion); 0 (the default) never does.
    speech : SpeechConfig
        Thresholds of the speech-or-not decision :meth:`predict_result` makes before the emotion
        (:func:`voxemo.dsp.speech.speech_presence`).
    """

    #: the runtime that runs the network ("torch" or "onnx")
    backend = ""

    def __init__(self, config: Config, classes: Sequence[str]) -> None:
        self.config = config
        self.classes_ = np.asarray(list(classes))
        self.temperature = 1.0
        self.calibration: dict[str, Any] = {}
        self.min_confidence = 0.0
        self.speech = SpeechConfig()

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

    def predict_result(self, path: str | os.PathLike[str], *, min_confidence: float | None = None) -> FileResult:
        """One file's typed result (:mod:`voxemo.inference.results`).

        Speech first: a file without speech (:func:`voxemo.dsp.speech.speech_presence` on the decoded signal) is a
        :class:`~voxemo.inference.results.NoSpeech`, with no emotion. Speech gives a
        :class:`~voxemo.inference.results.Prediction`, or an :class:`~voxemo.inference.results.Uncertain` when its
        top probability is below ``min_confidence`` (default :attr:`min_confidence`). A file voxemo cannot use
        (unreadable, silent, too short) is a :class:`~voxemo.inference.results.FileFailure` with its one-line cause.
        """
        floor = self.min_confidence if min_confidence is None else float(min_confidence)
        name = str(path)
        try:
            y, sr = load_audio(path, max_duration=self.config.audio.max_duration)
            spec = extract(y, sr, self.config.audio, self.config.features, name=name)  # its checks come first
            presence = speech_presence(y, sr, self.speech)
            if not presence.speech:
                return NoSpeech(name, presence.reason)
            probs = average_windows([spec], self.config, self.calibrated_segment_proba, len(self.classes_))[0]
        except VoxemoError as exc:
            return FileFailure(name, str(exc))
        best = int(probs.argmax())
        confidence = round(float(probs[best]), 4)
        probabilities = {str(c): round(float(p), 4) for c, p in zip(self.classes_, probs)}
        if confidence < floor:  # the printed (rounded) confidence: 0.49 with --min-confidence 0.49 is a label
            return Uncertain(name, confidence, probabilities, floor)
        return Prediction(name, str(self.classes_[best]), confidence, probabilities)

    def predict_file(self, path: str | os.PathLike[str], *, min_confidence: float | None = None) -> dict[str, Any]:
        """The JSON-ready result for one file (:meth:`predict_result` as a dict): ``{"path", "emotion",
        "confidence", "probabilities", "speech": true}``; ``{"path", "speech": false, "emotion": null, "reason"}``
        without speech; with ``"emotion": null, "uncertain": true, "reason"`` below ``min_confidence``; on failure
        ``{"path": ..., "error": "<one line>"}``."""
        return self.predict_result(path, min_confidence=min_confidence).to_dict()
