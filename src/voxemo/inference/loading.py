"""Loading a model: :func:`load_model` opens a model folder, a ``.onnx`` file, or the model shipped in the package.

With backend ``"auto"`` (the default) a folder's ``model.onnx`` runs in ONNX Runtime when it is the folder's only
network (the shipped models) or its stamp matches the ``weights.pt`` beside it, and torch otherwise: the same
probabilities (max |Δp| ~1e-6), the network about 4x faster, and prediction never imports torch.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path

from voxemo.core.errors import ModelError, VoxemoError
from voxemo.inference.adaptset import AdaptationRecord
from voxemo.inference.classifier import Classifier
from voxemo.inference.onnx_backend import OnnxClassifier
from voxemo.inference.probe_backend import ProbeClassifier, is_probe_folder
from voxemo.inference.results import FileFailure, FileResult
from voxemo.inference.torch_backend import EmotionClassifier
from voxemo.io.discovery import expand_inputs
from voxemo.io.files import file_digest
from voxemo.io.modelfile import ADAPTATION, ONNX_FILE, WEIGHTS, folder_calibration

log = logging.getLogger(__name__)


BACKENDS = ("auto", "torch", "onnx")


#: the models shipped inside the package, by the name ``load_model`` and ``--model`` take
PROFILES = ("default", "whisper-telephone", "fast", "telephone", "voice", "voice-telephone")
#: other names of shipped models: ``whisper`` is the default model's family
ALIASES = {"whisper": "default"}


def default_model_dir(profile: str = "default") -> Path:
    """A pretrained model shipped inside the package (:data:`PROFILES`, or a name in :data:`ALIASES`):

    - ``default`` (also ``whisper``): OpenAI Whisper base's encoder, frozen, with a linear head fitted on RAVDESS and
      Emo-DB (:mod:`voxemo.inference.probe_backend`): two languages, eight emotions, the best across corpora;
    - ``whisper-telephone``: the same with a telephone copy of every training clip, for calls;
    - ``fast``: an ensemble of three CNNs on RAVDESS' log-mel (:mod:`voxemo.nn.model`), several times cheaper per
      clip, the model ``voxemo run`` trains;
    - ``telephone``: the ``fast`` recipe with a third of its augmented copies through a simulated telephone line;
    - ``voice``: a pretrained speaker encoder, frozen, with a linear head fitted on RAVDESS (the encoder family
      ``voice``, :mod:`voxemo.nn.probe`), and ``voice-telephone``, the same with its head also fitted on telephone
      copies, for calls.

    The four encoder-family models hold heads only; their two encoders are stored once, in ``models/encoders``."""
    return Path(str(resources.files("voxemo") / "models" / ALIASES.get(profile, profile)))


def model_path(path: str | os.PathLike[str] | None) -> Path:
    """Where ``load_model(path)`` looks: the default model's folder for None, a shipped model's folder for its name
    (unless a file or folder of that name exists), else ``path`` itself."""
    if path is None:
        return default_model_dir()
    p = Path(path)
    return default_model_dir(str(path)) if (str(path) in PROFILES or str(path) in ALIASES) and not p.exists() else p


def load_model(path: str | os.PathLike[str] | None = None, backend: str = "auto") -> Classifier:
    """Load a model directory or ``.onnx`` file, or the pretrained model shipped with voxemo when ``path`` is None.

    Parameters
    ----------
    path : path-like or None
        A model directory (None: the shipped model), a ``.onnx`` file written by ``voxemo export --onnx``, or the
        name of a shipped model (:data:`PROFILES`: ``"fast"``, ``"telephone"``, ``"voice"``, ``"voice-telephone"``;
        ``"whisper"`` is the default), unless a folder of that name exists.
    backend : {"auto", "torch", "onnx"}
        Which runtime runs the network; preprocessing is the same code either way. ``"auto"`` runs a directory's
        ``model.onnx`` with ONNX Runtime when it was exported from the ``weights.pt`` beside it, else torch.
        ``"onnx"`` insists on ONNX Runtime (a directory must hold a ``model.onnx``); ``"torch"`` on torch (CNN models
        only: an encoder family's encoder runs in ONNX Runtime alone).

    Examples
    --------
    >>> clf = load_model()
    >>> clf.classes_[:3].tolist(), clf.backend
    (['neutral', 'calm', 'happy'], 'onnx')
    """
    if backend not in BACKENDS:
        raise ModelError(f"backend={backend!r} is not one of {', '.join(BACKENDS)}")
    clf = _load(model_path(path), backend)
    if clf.model_dir is not None and (clf.model_dir / ADAPTATION).is_file():
        try:
            clf.adaptation = AdaptationRecord.from_dict(json.loads((clf.model_dir / ADAPTATION).read_text()))
        except (OSError, ValueError, VoxemoError) as exc:
            raise ModelError(f"{clf.model_dir / ADAPTATION}: unreadable ({exc})") from None
    return clf


#: what every prediction path takes as its model: a loaded classifier, a folder or ``.onnx`` file, a shipped model's
#: name, or None (the default model)
ModelRef = Classifier | str | os.PathLike[str] | None


def resolve_model(model: ModelRef, backend: str = "auto") -> Classifier:
    """The classifier ``model`` names, resolved once: a loaded classifier as it is (adapted, fine-tuned or built in
    memory), a name, path or None through :func:`load_model`."""
    if model is None or isinstance(model, (str, os.PathLike)):
        return load_model(model, backend)
    return model


def _load(p: Path, backend: str) -> Classifier:

    if not p.exists():  # before any backend is chosen: a base install must not answer "needs torch"
        raise ModelError(f"{p}: model directory not found (nor a .onnx file; shipped models: {', '.join(PROFILES)})")

    if p.is_dir() and is_probe_folder(p):
        if backend == "torch":
            raise ModelError(f"{p}: an encoder-family model runs with ONNX Runtime only (--backend auto or onnx); its "
                             "encoder is already an ONNX file, so there is no torch network to run or export: for "
                             "those, a CNN model (--model fast)")
        return ProbeClassifier.load(p)
    is_onnx_file = p.suffix.lower() == ".onnx"
    if backend == "torch":
        if is_onnx_file:
            raise ModelError(f"{p}: is an ONNX file; run it with the onnx backend (--backend onnx)")
        return EmotionClassifier.load(p)

    if is_onnx_file:
        return OnnxClassifier.load(p)
    if backend == "onnx":
        if p.is_dir() and not (p / ONNX_FILE).is_file():
            raise ModelError(f"{p}: holds no {ONNX_FILE}; write one with `voxemo export --onnx {p / ONNX_FILE}`")
        clf = OnnxClassifier.load(p / ONNX_FILE if p.is_dir() else p)
        clf.model_dir = p if p.is_dir() else None
        return clf
    if (p / ONNX_FILE).is_file() and not (p / WEIGHTS).is_file():  # the network stored once, as ONNX
        clf = OnnxClassifier.load(p / ONNX_FILE)
        clf.temperature, clf.calibration = folder_calibration(p)
        clf.model_dir = p
        return clf
    if (p / ONNX_FILE).is_file() and (p / WEIGHTS).is_file():
        try:
            clf = OnnxClassifier.load(p / ONNX_FILE)
        except ModelError as exc:
            log.warning("running %s with torch: %s", p, exc)
        else:
            if clf.weights_digest == file_digest(p / WEIGHTS):
                clf.temperature, clf.calibration = folder_calibration(p)  # the folder's file rules, as for torch
                clf.model_dir = p
                return clf
            log.warning("running %s with torch: %s was not exported from its %s", p, ONNX_FILE, WEIGHTS)
    return EmotionClassifier.load(p)


def predict_paths(paths: Iterable[str | os.PathLike[str]], model: Classifier) -> Iterator[FileResult]:
    """Predict every file given, found in the given folders or listed in the given manifests, in this process,
    yielding one typed result per file as it goes
    (:func:`voxemo.inference.batch.predict_batch` adds worker processes)."""
    for path, error in expand_inputs(paths):
        yield FileFailure(path, error) if error else model.predict_result(path)
