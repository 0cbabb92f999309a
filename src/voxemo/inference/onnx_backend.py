"""The ONNX Runtime backend: :class:`OnnxClassifier` runs a network exported by
:func:`~voxemo.inference.torch_backend.export_onnx`, with the same API as the torch classifier.

The file's input is a batch of fixed-length log-mel segments ``logmel`` (batch, n_mels, n_frames), its output the
softmax ``probabilities`` (batch, n_classes); its metadata holds the config, labels and temperature
(:mod:`voxemo.io.modelfile`), so preprocessing, windowing and averaging are rebuilt by the same numpy code. This
module never imports torch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from voxemo.core.config import Config
from voxemo.core.errors import ModelError, VoxemoError, first_line
from voxemo.dsp.features import segment_frames
from voxemo.inference.classifier import Classifier

if TYPE_CHECKING:
    from voxemo.inference.adaptset import AdaptationSet, LabelledSet
    from voxemo.nn.finetune import FineTuneConfig
import tempfile

from voxemo.inference.torch_backend import EmotionClassifier, export_onnx
from voxemo.io.modelfile import (
    FORMAT,
    INPUT,
    META_CONFIG,
    META_FORMAT,
    META_LABELS,
    META_TEMPERATURE,
    META_WEIGHTS,
    OUTPUT,
)


class OnnxClassifier(Classifier):
    """A model exported with :func:`export_onnx`, run with ONNX Runtime on the CPU.

    Same API as :class:`~voxemo.inference.torch_backend.EmotionClassifier` (``predict``, ``predict_proba``,
    ``predict_file``, ``features``, ``classes_``, ``config``); torch is not used for inference.

    Attributes
    ----------
    session : onnxruntime.InferenceSession
    weights_digest : str or None
        SHA-256 of the ``weights.pt`` this network was exported from (None for a standalone export).
    threads : int
        Intra-op threads of the session (default 1, like the torch classifier); 0 lets ONNX Runtime use all cores.
    """

    backend = "onnx"

    def __init__(self, session: Any, config: Config, classes: list[str], *, threads: int = 1) -> None:
        super().__init__(config, classes)
        self.session = session
        self.threads = threads
        self.weights_digest: str | None = None
        #: the torch classifier an adapted ONNX classifier was exported from (saving writes its weights)
        self.torch_model: Any = None

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, threads: int = 1) -> OnnxClassifier:
        """Load a ``.onnx`` file written by :func:`export_onnx`; any problem is a one-line :class:`ModelError`."""
        import onnxruntime as ort

        p = Path(path)
        if p.is_dir():
            raise ModelError(f"{p}: is a model folder; the onnx backend needs the .onnx file written by "
                             "`voxemo export --onnx FILE` (or use backend torch)")
        if not p.is_file():
            raise ModelError(f"{p}: ONNX model file not found")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: the session is checked below and errors raised as ModelError
        try:
            session = ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"])
            meta = session.get_modelmeta().custom_metadata_map
        except Exception as exc:  # onnxruntime's errors (InvalidProtobuf, Fail, ...) share no public base class
            raise ModelError(f"{p}: not a readable ONNX model ({first_line(exc)})") from None
        if meta.get(META_FORMAT) != FORMAT:
            raise ModelError(f"{p}: not a voxemo ONNX export (no {META_FORMAT}={FORMAT} metadata); "
                             "write one with `voxemo export --onnx FILE`")
        try:
            config = Config.from_dict(json.loads(meta[META_CONFIG]))
            classes = [str(c) for c in json.loads(meta[META_LABELS])]
            temperature = float(meta.get(META_TEMPERATURE, "1.0"))
            if not 0 < temperature < float("inf"):
                raise ValueError(f"temperature={temperature!r} must be a positive number")
        except (VoxemoError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{p}: bad voxemo metadata in ONNX file ({first_line(exc)})") from None
        _check_signature(p, session, config, len(classes))
        clf = cls(session, config, classes, threads=threads)
        clf.temperature = temperature
        clf.weights_digest = meta.get(META_WEIGHTS)
        return clf

    def adapted(self, adaptation_set: AdaptationSet, *, prior_seconds: float | None = None) -> OnnxClassifier:
        """A new ONNX classifier adapted to ``adaptation_set`` (see :meth:`Classifier.adapt`): the model folder's
        torch weights are adapted (:meth:`EmotionClassifier.adapted`) and exported to an in-memory network. Needs
        the folder this was loaded from and torch (``voxemo[train]``)."""
        return self._via_torch(lambda clf: clf.adapted(adaptation_set, prior_seconds=prior_seconds))

    def tuned(self, labelled: LabelledSet, recipe: FineTuneConfig | None = None) -> OnnxClassifier:
        """A new ONNX classifier fine-tuned on labelled clips (see :meth:`Classifier.fine_tune`), through the model
        folder's torch weights like :meth:`adapted`."""
        return self._via_torch(lambda clf: clf.tuned(labelled, recipe))

    def save(self, path: str | os.PathLike[str], *, report: dict[str, Any] | None = None,
             onnx: bool | str = True) -> Path:
        """Write an adapted or fine-tuned ONNX classifier as a model folder, through the torch model it was exported
        from (:meth:`EmotionClassifier.save <voxemo.inference.torch_backend.EmotionClassifier.save>`); one loaded
        from a file is already saved there."""
        if self.torch_model is None:
            raise ModelError(f"this ONNX classifier is the file it was loaded from ({self.origin()}); only an adapted "
                             "or fine-tuned one is saved")
        return Path(self.torch_model.save(path, report=report, onnx=onnx))

    def _via_torch(self, change: Callable[[Any], Classifier]) -> OnnxClassifier:


        torch_clf = self.torch_model
        if torch_clf is None:
            if self.model_dir is None:
                raise ModelError("adapting needs the model folder (weights.pt), not a standalone .onnx file: load "
                                 "the folder instead")
            torch_clf = EmotionClassifier.load(self.model_dir)
        self.copy_settings(torch_clf)
        changed = change(torch_clf)
        with tempfile.TemporaryDirectory(prefix="voxemo-adapt-") as tmp:
            clf = OnnxClassifier.load(export_onnx(changed, Path(tmp) / "model.onnx"), threads=self.threads)
        changed.copy_settings(clf)
        clf.torch_model = changed  # what saving the adapted model writes
        return clf

    def segment_proba(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Probabilities for fixed-length log-mel segments: (n, n_mels, n_frames) -> (n, n_classes), float32."""
        x = np.asarray(x, dtype=np.float32)
        out = [self.session.run([OUTPUT], {INPUT: np.ascontiguousarray(x[i : i + batch_size])})[0]
               for i in range(0, len(x), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, len(self.classes_)), np.float32)


def _check_signature(path: Path, session: Any, config: Config, n_classes: int) -> None:
    """The graph's input and output shapes must match the config and labels stored beside it."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    want_in = [config.features.n_mels, segment_frames(config.audio, config.features)]
    if [i.name for i in inputs] != [INPUT] or [o.name for o in outputs] != [OUTPUT]:
        raise ModelError(f"{path}: expected one input {INPUT!r} and one output {OUTPUT!r}, got "
                         f"{[i.name for i in inputs]} -> {[o.name for o in outputs]}")
    if list(inputs[0].shape[1:]) != want_in or outputs[0].shape[1] != n_classes:
        raise ModelError(f"{path}: graph shapes {inputs[0].shape} -> {outputs[0].shape} do not match its config "
                         f"(batch, {want_in[0]}, {want_in[1]}) -> (batch, {n_classes})")
