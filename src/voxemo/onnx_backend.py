"""ONNX export of the network and an ONNX Runtime classifier with the same API as the torch one.

Only the CNN goes into the ONNX file: its input is a batch of fixed-length log-mel segments
``logmel`` of shape (batch, n_mels, n_frames) with a dynamic batch axis, its output the softmax
``probabilities`` (batch, n_classes). The full :class:`~voxemo.config.Config` and the label list are stored in
the file's ``metadata_props``, so the file alone is a complete model: preprocessing, windowing and averaging
are rebuilt from that config by the same numpy code the torch classifier uses (:class:`voxemo.predict.Classifier`).

Export uses torch's ``torch.export``-based exporter (``dynamo=True``, the default since torch 2.9; it needs
``onnxscript``); the older TorchScript exporter is deprecated and will be removed. Inference does not import
torch at all.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .config import Config
from .errors import ModelError, VoxemoError
from .features import segment_frames
from .predict import Classifier, EmotionClassifier

#: metadata_props keys written by :func:`export_onnx`
META_FORMAT, META_CONFIG = "voxemo.format", "voxemo.config"
META_LABELS, META_VERSION = "voxemo.labels", "voxemo.version"
META_TEMPERATURE = "voxemo.temperature"  # softmax temperature (voxemo.calibration); absent in older exports: 1
META_WEIGHTS = "voxemo.weights_sha256"  # SHA-256 of the weights.pt exported, when exported into a model folder
FORMAT = "voxemo-onnx-1"
INPUT, OUTPUT = "logmel", "probabilities"


def export_onnx(clf: Classifier, path: str | os.PathLike[str], *, opset: int | None = None,
                weights_digest: str | None = None) -> Path:
    """Write the classifier's network, config and labels to one ``.onnx`` file (atomically).

    Parameters
    ----------
    clf : EmotionClassifier
        A torch classifier, e.g. ``load_model()`` or ``load_model("runs/study/model")``.
    path : path-like
        Output file; by convention it ends in ``.onnx``.
    opset : int, optional
        ONNX opset; None lets the exporter choose.
    weights_digest : str, optional
        SHA-256 of the ``weights.pt`` holding these weights, stored so that :func:`voxemo.predict.load_model` can
        tell a folder's ``model.onnx`` still matches its weights.

    Returns
    -------
    Path
        The written file.
    """
    import torch

    class Probabilities(torch.nn.Module):  # the network and its softmax: the graph outputs probabilities
        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.net(x), dim=1)

    out = Path(path)
    if not isinstance(clf, EmotionClassifier):
        raise ModelError(f"{out}: export needs a torch model (a model folder), not {type(clf).__name__}")
    if out.is_dir():
        raise ModelError(f"{out}: is a folder; give the .onnx file to write")
    cfg = clf.config
    example = torch.zeros(2, cfg.features.n_mels, segment_frames(cfg.audio, cfg.features))
    net = Probabilities(clf.model).eval()
    try:
        with _quiet_exporter():
            program = torch.onnx.export(net, (example,), dynamo=True, input_names=[INPUT], output_names=[OUTPUT],
                                        dynamic_shapes=({0: torch.export.Dim("batch")},), opset_version=opset,
                                        verbose=False)
    except Exception as exc:  # the exporter raises many types; the user needs one line
        raise ModelError(f"{out}: ONNX export failed ({_first_line(exc)})") from None
    program.model.metadata_props.update({
        META_FORMAT: FORMAT,
        META_CONFIG: json.dumps(cfg.to_dict()),
        META_LABELS: json.dumps([str(c) for c in clf.classes_]),
        META_VERSION: _voxemo_version(),
        META_TEMPERATURE: repr(float(clf.temperature)),
        **({META_WEIGHTS: weights_digest} if weights_digest else {}),
    })
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        program.save(str(tmp), external_data=False)
        os.replace(tmp, out)
    except OSError as exc:
        raise ModelError(f"{out}: cannot write ({exc.strerror or exc})") from None
    finally:
        tmp.unlink(missing_ok=True)
    return out


class OnnxClassifier(Classifier):
    """A model exported with :func:`export_onnx`, run with ONNX Runtime on the CPU.

    Same API as :class:`~voxemo.predict.EmotionClassifier` (``predict``, ``predict_proba``, ``predict_file``,
    ``features``, ``classes_``, ``config``); torch is not used for inference.

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
            raise ModelError(f"{p}: not a readable ONNX model ({_first_line(exc)})") from None
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
            raise ModelError(f"{p}: bad voxemo metadata in ONNX file ({_first_line(exc)})") from None
        _check_signature(p, session, config, len(classes))
        clf = cls(session, config, classes, threads=threads)
        clf.temperature = temperature
        clf.weights_digest = meta.get(META_WEIGHTS)
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


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's chatter during one export: missing torchvision ops, the optimizer's passes,
    deprecations inside torch. Errors still raise."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "onnxscript", "onnx_ir")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _voxemo_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("voxemo")
    except PackageNotFoundError:
        return "unknown"
