"""Saved models and prediction: the scikit-learn-like :class:`EmotionClassifier` and :func:`load_model`.

A model directory holds ``weights.pt`` (a plain state dict, loaded with ``weights_only=True`` so nothing
arbitrary is unpickled), ``config.json`` (the full :class:`~voxemo.config.Config`), ``labels.json``, from
training, ``training.json``, and optionally ``calibration.json`` (the softmax temperature,
:mod:`voxemo.calibration`; absent means T = 1). Prediction rebuilds the preprocessing from ``config.json``.
Importing this module does not import torch: the ONNX backend runs without it.

:class:`Classifier` holds everything but the network: preprocessing, windowing and averaging, labels. Its
subclasses only turn fixed-length segments into probabilities: :class:`EmotionClassifier` with torch,
:class:`voxemo.onnx_backend.OnnxClassifier` with ONNX Runtime.

A model directory saved with ``onnx=True`` (``voxemo train`` and ``voxemo run`` do; so does the shipped model) also
holds ``model.onnx``, the same network exported for ONNX Runtime, stamped with the SHA-256 of the ``weights.pt``
it came from. ``load_model`` (backend ``"auto"``, the default) runs that file when its stamp matches the weights
beside it, and torch otherwise: same probabilities (max |Δp| ~1e-6), the network runs ~4x faster, and
prediction never imports torch.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
from collections.abc import Callable, Iterable, Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .audio import load_audio
from .calibration import CALIBRATION, load_temperature, save_calibration, temperature_scale
from .config import Config
from .errors import AudioError, ModelError, VoxemoError
from .features import extract, pad_value, segment_frames, windows

if TYPE_CHECKING:
    from .model import EmotionCNN, EmotionEnsemble

WEIGHTS, CONFIG, LABELS, ONNX_FILE = "weights.pt", "config.json", "labels.json", "model.onnx"
BACKENDS = ("auto", "torch", "onnx")

log = logging.getLogger(__name__)

AudioInput = str | os.PathLike[str] | np.ndarray


def default_model_dir() -> Path:
    """The pretrained model shipped inside the package."""
    return Path(str(resources.files("voxemo") / "models" / "default"))


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
        items = [x] if single else list(x)  # type: ignore[list-item]
        specs = [self.features(item, sr) for item in items]
        probs = average_windows(specs, self.config, self.calibrated_segment_proba, len(self.classes_))
        return probs[0] if single else probs

    def predict(self, x: AudioInput | Sequence[AudioInput], sr: int | None = None) -> str | np.ndarray:
        """Most probable emotion: a label for one input, an array of labels for a list."""
        probs = self.predict_proba(x, sr)
        return self.classes_[probs.argmax(-1)] if probs.ndim == 2 else str(self.classes_[int(probs.argmax())])

    def predict_file(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """The JSON-ready result for one file: path, emotion, confidence and every class' probability; on
        failure ``{"path": ..., "error": "<one line>"}``."""
        try:
            probs = self.predict_proba(path)
        except VoxemoError as exc:
            return {"path": str(path), "error": str(exc)}
        best = int(probs.argmax())
        return {
            "path": str(path),
            "emotion": str(self.classes_[best]),
            "confidence": round(float(probs[best]), 4),
            "probabilities": {str(c): round(float(p), 4) for c, p in zip(self.classes_, probs)},
        }


class EmotionClassifier(Classifier):
    """A trained emotion model with its preprocessing, run with torch.

    Attributes
    ----------
    model : EmotionCNN or EmotionEnsemble
    classes_ : np.ndarray of str
        Emotion labels in the order of the probability columns.
    config : Config
        Preprocessing, architecture and training configuration the model was trained with.
    threads : int
        Torch threads used while predicting (default 1: a clip is a few windows, and a second thread only adds
        waiting); 0 keeps torch's setting, which suits large batches.
    """

    backend = "torch"

    def __init__(self, model: EmotionCNN | EmotionEnsemble, config: Config, classes: Sequence[str], *,
                 threads: int = 1) -> None:
        super().__init__(config, classes)
        self.model = model.eval()
        self.threads = threads

    # ---- persistence -------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], *, report: dict[str, Any] | None = None, onnx: bool = False) -> Path:
        """Write the model directory (files are written to temporary names and renamed into place).

        With ``onnx`` the network is also exported to ``model.onnx`` (a few seconds), which :func:`load_model`
        then prefers; without it an older ``model.onnx`` there is removed, so it can never outlive its weights.
        An export that fails leaves a working torch model and logs why.
        """
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        import torch

        _atomic_write(out / WEIGHTS, lambda f: torch.save(self.model.state_dict(), f))
        _atomic_write(out / CONFIG, lambda f: f.write(json.dumps(self.config.to_dict(), indent=2).encode()))
        _atomic_write(out / LABELS, lambda f: f.write(json.dumps(list(map(str, self.classes_))).encode()))
        if report is not None:
            _atomic_write(out / "training.json", lambda f: f.write(json.dumps(report, indent=2).encode()))
        if self.temperature != 1.0 or self.calibration:
            save_calibration(out, {**self.calibration, "temperature": float(self.temperature)})
        else:
            (out / CALIBRATION).unlink(missing_ok=True)  # an uncalibrated model over an old folder
        (out / ONNX_FILE).unlink(missing_ok=True)
        if onnx:
            from .cache import file_digest
            from .onnx_backend import export_onnx

            try:
                export_onnx(self, out / ONNX_FILE, weights_digest=file_digest(out / WEIGHTS))
            except ModelError as exc:
                log.warning("%s not written, predictions will run with torch: %s", out / ONNX_FILE, exc)
        return out

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> EmotionClassifier:
        """Load a model directory written by :meth:`save`."""
        import torch

        from .train import build_model

        d = Path(path)
        if not d.is_dir():
            raise ModelError(f"{d}: model directory not found")
        missing = [n for n in (WEIGHTS, CONFIG, LABELS) if not (d / n).is_file()]
        if missing:
            raise ModelError(f"{d}: not a voxemo model directory (missing {', '.join(missing)})")
        try:
            config = Config.from_dict(json.loads((d / CONFIG).read_text()))
            classes = json.loads((d / LABELS).read_text())
            state = torch.load(d / WEIGHTS, map_location="cpu", weights_only=True)
            model = build_model(config, len(classes))
            model.load_state_dict(state)
            temperature, calibration = _folder_calibration(d)
        except (VoxemoError, ValueError, RuntimeError, KeyError, TypeError, OSError, pickle.UnpicklingError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ModelError(f"{d}: cannot load model ({first})") from None
        clf = cls(model, config, classes)
        clf.temperature, clf.calibration = temperature, calibration
        return clf

    def segment_proba(self, x: np.ndarray) -> np.ndarray:
        """Probabilities for fixed-length log-mel segments: (n, n_mels, n_frames) -> (n, n_classes), float32."""
        import torch

        from .train import predict_segments

        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads or previous)
        try:
            return predict_segments(self.model, x)
        finally:
            torch.set_num_threads(previous)


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
    n_frames = segment_frames(config.audio, config.features)
    fill = pad_value(config.features)
    wins = [windows(s, n_frames, fill=fill) for s in specs]
    if not wins:
        return np.zeros((0, n_classes), np.float32)
    probs = segment_proba(np.concatenate(wins))
    bounds = np.cumsum([0] + [len(w) for w in wins])
    return np.stack([probs[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:])])


def _folder_calibration(d: Path) -> tuple[float, dict[str, Any]]:
    """A model folder's temperature and the ``calibration.json`` it came from (1.0 and {} without that file)."""
    temperature = load_temperature(d)
    return temperature, json.loads((d / CALIBRATION).read_text()) if temperature != 1.0 else {}


def _atomic_write(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        write(f)
    os.replace(tmp, path)


def load_model(path: str | os.PathLike[str] | None = None, backend: str = "auto") -> Classifier:
    """Load a model directory or ``.onnx`` file, or the pretrained model shipped with voxemo when ``path`` is None.

    Parameters
    ----------
    path : path-like or None
        A model directory (None: the shipped model), or a ``.onnx`` file written by ``voxemo export --onnx``.
    backend : {"auto", "torch", "onnx"}
        Which runtime runs the network; preprocessing is the same code either way. ``"auto"`` runs a directory's
        ``model.onnx`` with ONNX Runtime when it was exported from the ``weights.pt`` beside it, else torch.
        ``"onnx"`` insists on ONNX Runtime (a directory must hold a ``model.onnx``); ``"torch"`` on torch.

    Examples
    --------
    >>> clf = load_model()
    >>> clf.classes_[:3].tolist(), clf.backend
    (['neutral', 'calm', 'happy'], 'onnx')
    """
    if backend not in BACKENDS:
        raise ModelError(f"backend={backend!r} is not one of {', '.join(BACKENDS)}")
    p = default_model_dir() if path is None else Path(path)
    is_onnx_file = p.suffix.lower() == ".onnx"
    if backend == "torch":
        if is_onnx_file:
            raise ModelError(f"{p}: is an ONNX file; run it with the onnx backend (--backend onnx)")
        return EmotionClassifier.load(p)
    from .onnx_backend import OnnxClassifier

    if is_onnx_file:
        return OnnxClassifier.load(p)
    if backend == "onnx":
        if p.is_dir() and not (p / ONNX_FILE).is_file():
            raise ModelError(f"{p}: holds no {ONNX_FILE}; write one with `voxemo export --onnx {p / ONNX_FILE}`")
        return OnnxClassifier.load(p / ONNX_FILE if p.is_dir() else p)
    if (p / ONNX_FILE).is_file() and (p / WEIGHTS).is_file():
        from .cache import file_digest

        try:
            clf = OnnxClassifier.load(p / ONNX_FILE)
        except ModelError as exc:
            log.warning("running %s with torch: %s", p, exc)
        else:
            if clf.weights_digest == file_digest(p / WEIGHTS):
                clf.temperature, clf.calibration = _folder_calibration(p)  # the folder's file rules, as for torch
                return clf
            log.warning("running %s with torch: %s was not exported from its %s", p, ONNX_FILE, WEIGHTS)
    return EmotionClassifier.load(p)


def predict_paths(paths: Iterable[str | os.PathLike[str]], model: Classifier) -> Iterator[dict[str, Any]]:
    """Predict every file given, found in the given folders or listed in the given manifests, in this process,
    yielding one result dict per file as it goes (:func:`voxemo.batch.predict_batch` adds worker processes)."""
    from .batch import expand_inputs

    for path, error in expand_inputs(paths):
        yield {"path": path, "error": error} if error else model.predict_file(path)
