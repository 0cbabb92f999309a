"""What every inference backend shares: :class:`Classifier` holds everything but the network (preprocessing rebuilt
from the model's config, windowing and averaging, labels, temperature, results). Its subclasses only turn
fixed-length segments into probabilities: :class:`~voxemo.inference.torch_backend.EmotionClassifier` with torch,
:class:`~voxemo.inference.onnx_backend.OnnxClassifier` with ONNX Runtime.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from voxemo.core.config import Config
from voxemo.core.errors import AudioError, NoSpeechError, VoxemoError
from voxemo.dsp.features import extract
from voxemo.dsp.scoring import average_windows
from voxemo.dsp.speech import SpeechConfig, speech_presence
from voxemo.inference.adaptset import (
    AdaptationRecord,
    AdaptationSet,
    LabelledSet,
    collect_adaptation_set,
    collect_labelled_set,
)
from voxemo.inference.calibration import temperature_scale
from voxemo.inference.reading import analyse_file
from voxemo.inference.results import FileFailure, FileResult, Prediction, Uncertain
from voxemo.io.audio import load_audio

if TYPE_CHECKING:
    from voxemo.nn.finetune import FineTuneConfig

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
        #: the model folder this was loaded from (None: built in memory or a standalone .onnx file)
        self.model_dir: Path | None = None
        #: what it was adapted on (:meth:`AdaptationSet.record`); None for a model as trained
        self.adaptation: AdaptationRecord | None = None

    def copy_settings(self, other: Classifier) -> None:
        """Give ``other`` this classifier's temperature, calibration, confidence floor, speech thresholds and
        adaptation record."""
        other.temperature, other.calibration = self.temperature, dict(self.calibration)
        other.min_confidence, other.speech = self.min_confidence, self.speech
        other.adaptation = self.adaptation

    def origin(self) -> str:
        """The model folder this classifier comes from, through any adaptations ("unsaved model" without one)."""
        if self.model_dir is not None:
            return str(self.model_dir)
        return self.adaptation.base_model if self.adaptation is not None else "unsaved model"

    # ---- adaptation ---------------------------------------------------------------------------------------
    def adapt(self, inputs: Iterable[str | os.PathLike[str]], *, jobs: int = 1, prior_seconds: float | None = None,
              min_seconds: float | None = None, progress: bool = False) -> Classifier:
        """A new classifier adapted, without labels, to the recordings ``inputs``; this one is not changed.

        Every member's input standardisation and batch-norm statistics are re-measured on the speech of the
        inputs (files, folders or manifests, as :func:`voxemo.io.discovery.expand_inputs` takes them; unreadable
        files and files without speech are skipped and counted) and shrunk towards the training statistics when
        there is little audio (:meth:`~voxemo.inference.adaptset.AdaptationSet.weight`). The result runs on the
        same backend as this one.

        Raises
        ------
        AdaptationError
            No inputs, or too little usable speech in them (one line naming the cause).
        ModelError
            The model cannot be adapted (no training statistics, or an ONNX file without its model folder).
        """
        aset = collect_adaptation_set(inputs, self.config, speech=self.speech, jobs=jobs, progress=progress,
                                      min_seconds=min_seconds)
        return self.adapted(aset, prior_seconds=prior_seconds)

    def adapted(self, adaptation_set: AdaptationSet, *, prior_seconds: float | None = None) -> Classifier:
        """This model adapted to an :class:`~voxemo.inference.adaptset.AdaptationSet` (see :meth:`adapt`)."""
        raise NotImplementedError

    def fine_tune(self, clips: Iterable[tuple[str, str]], *, recipe: FineTuneConfig | None = None, jobs: int = 1,
                  progress: bool = False) -> Classifier:
        """A new classifier fine-tuned on a few labelled clips of the target domain; this one is not changed.

        ``clips`` are ``(path, emotion)`` pairs; an emotion teaches the model's class of that name, else its folded
        class (calm → neutral), and clips of other emotions, unreadable or without speech are skipped and
        counted. The recipe (:class:`~voxemo.nn.finetune.FineTuneConfig`, default: the output layer, 100 steps,
        L2 pull to the trained weights) was chosen on Emo-DB and TurEV-DB (docs/results.md, "Adaptation"). Adapt
        without labels first (:meth:`adapt`) when unlabelled recordings are at hand.
        """
        labelled = collect_labelled_set(clips, self.config, [str(c) for c in self.classes_], speech=self.speech,
                                        jobs=jobs, progress=progress)
        return self.tuned(labelled, recipe)

    def tuned(self, labelled: LabelledSet, recipe: FineTuneConfig | None = None) -> Classifier:
        """This model fine-tuned on a :class:`~voxemo.inference.adaptset.LabelledSet` (see :meth:`fine_tune`)."""
        raise NotImplementedError

    def save(self, path: str | os.PathLike[str], *, report: dict[str, Any] | None = None,
             onnx: bool | str = False) -> Path:
        """Write this model as a model folder that :func:`~voxemo.inference.loading.load_model` loads (an adapted or
        fine-tuned model included); ``report`` becomes its ``training.json``, ``onnx`` as the backend says."""
        raise NotImplementedError

    def segment_proba(self, x: np.ndarray) -> np.ndarray:
        """Probabilities for fixed-length log-mel segments: (n, n_mels, n_frames) -> (n, n_classes), float32."""
        raise NotImplementedError

    def calibrated_segment_proba(self, x: np.ndarray) -> np.ndarray:
        """:meth:`segment_proba` with the window logits divided by :attr:`temperature`."""
        return temperature_scale(self.segment_proba(x), self.temperature)

    # ---- prediction ---------------------------------------------------------------------------------------
    def features(self, x: AudioInput, sr: int | None = None) -> np.ndarray:
        """Log-mel spectrogram of a file path, or of an array with its sample rate ``sr`` in Hz."""
        y, rate, name = self._signal(x, sr)
        return extract(y, rate, self.config.audio, self.config.features, name=name)

    def _signal(self, x: AudioInput, sr: int | None) -> tuple[np.ndarray, int, str]:
        if isinstance(x, np.ndarray):
            if sr is None:
                raise AudioError("array input needs its sample rate: pass sr=<Hz>")
            return x, sr, "array"
        y, file_sr = load_audio(x, max_duration=self.config.audio.max_duration)
        return y, file_sr, str(x)

    def _speech_features(self, x: AudioInput, sr: int | None) -> np.ndarray | str:
        """The log-mel of an input with speech, or why it has none; a file goes the way every prediction path reads
        one (:func:`~voxemo.inference.reading.analyse_file`), an unusable one raising its one-line error."""
        if not isinstance(x, np.ndarray):
            checked = analyse_file(x, self.config, self.speech)
            if isinstance(checked, FileFailure):
                raise AudioError(checked.error)
            return checked if isinstance(checked, np.ndarray) else f"{checked.path}: {checked.reason}"
        y, rate, name = self._signal(x, sr)
        spec = extract(y, rate, self.config.audio, self.config.features, name=name)  # its checks come first
        presence = speech_presence(y, rate, self.speech)
        return spec if presence.speech else f"{name}: {presence.reason}"

    def predict_proba(self, x: AudioInput | Sequence[AudioInput], sr: int | None = None, *,
                      speech_check: bool = True) -> np.ndarray:
        """Class probabilities: shape (n_classes,) for one input, (n_inputs, n_classes) for a list.

        An input is a file path or a NumPy signal of shape (n,) or (n, channels) with ``sr``. A clip longer
        than ``config.audio.duration`` is covered by overlapping windows whose probabilities are averaged.

        Speech first, as on every other path: an input without speech (:func:`voxemo.dsp.speech.speech_presence`
        with :attr:`speech`) raises :class:`~voxemo.core.errors.NoSpeechError`, as an unreadable one raises
        :class:`~voxemo.core.errors.AudioError`. ``speech_check=False`` scores whatever it is given (the network's
        raw answer, e.g. for a benchmark). :meth:`predict_result` never raises and says which inputs are speech.
        """
        single = isinstance(x, (str, os.PathLike, np.ndarray))
        items: list[AudioInput] = [x] if isinstance(x, (str, os.PathLike, np.ndarray)) else list(x)
        specs = []
        for item in items:
            spec = self._speech_features(item, sr) if speech_check else self.features(item, sr)
            if isinstance(spec, str):
                raise NoSpeechError(spec)
            specs.append(spec)
        probs = average_windows(specs, self.config, self.calibrated_segment_proba, len(self.classes_))
        return probs[0] if single else probs

    def predict(self, x: AudioInput | Sequence[AudioInput], sr: int | None = None, *,
                speech_check: bool = True) -> str | None | np.ndarray:
        """Most probable emotion: a label for one input, an array of labels for a list; None for an input without
        speech (``speech_check=False``: a label for anything). Unreadable inputs raise, as in :meth:`predict_proba`.
        """
        single = isinstance(x, (str, os.PathLike, np.ndarray))
        items: list[AudioInput] = [x] if isinstance(x, (str, os.PathLike, np.ndarray)) else list(x)
        specs: list[np.ndarray | str] = [self._speech_features(item, sr) if speech_check else self.features(item, sr)
                                         for item in items]
        speech = [i for i, s in enumerate(specs) if not isinstance(s, str)]
        found = [s for s in specs if not isinstance(s, str)]
        probs = average_windows(found, self.config, self.calibrated_segment_proba, len(self.classes_))
        labels: list[str | None] = [None] * len(items)
        for i, p in zip(speech, probs):
            labels[i] = str(self.classes_[int(p.argmax())])
        if single:
            return labels[0]
        return np.array(labels, dtype=object) if None in labels else np.array(labels)

    def predict_result(self, path: str | os.PathLike[str], *, min_confidence: float | None = None) -> FileResult:
        """One file's typed result (:mod:`voxemo.inference.results`).

        Speech first: a file without speech (:func:`voxemo.dsp.speech.speech_presence` on the decoded signal) is a
        :class:`~voxemo.inference.results.NoSpeech`, with no emotion. Speech gives a
        :class:`~voxemo.inference.results.Prediction`, or an :class:`~voxemo.inference.results.Uncertain` when its
        top probability is below ``min_confidence`` (default :attr:`min_confidence`). A file voxemo cannot use
        (unreadable, silent, too short) is a :class:`~voxemo.inference.results.FileFailure` with its one-line cause.
        """
        floor = self.min_confidence if min_confidence is None else float(min_confidence)
        checked = analyse_file(path, self.config, self.speech)
        if not isinstance(checked, np.ndarray):
            return checked
        try:
            probs = average_windows([checked], self.config, self.calibrated_segment_proba, len(self.classes_))[0]
        except VoxemoError as exc:
            return FileFailure(str(path), str(exc))
        return self.labelled(str(path), probs, floor)

    def labelled(self, name: str, probs: np.ndarray, floor: float) -> Prediction | Uncertain:
        """The result for speech whose clip probabilities are ``probs``: a label, or uncertain below ``floor``."""
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
