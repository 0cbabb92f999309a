"""ONNX export of a trained network (torch): the graph, its config, labels and temperature in one file.

Only the CNN goes into the ONNX file: its input is a batch of fixed-length log-mel segments
``logmel`` of shape (batch, n_mels, n_frames) with a dynamic batch axis, its output the softmax
``probabilities`` (batch, n_classes). The full :class:`~voxemo.core.config.Config` and the label list are stored in
the file's ``metadata_props``, so the file alone is a complete model: preprocessing, windowing and averaging
are rebuilt from that config by the same numpy code the torch classifier uses
(:class:`voxemo.inference.classifier.Classifier`);
:class:`voxemo.inference.onnx_backend.OnnxClassifier` runs it.

Export uses torch's ``torch.export``-based exporter (``dynamo=True``, the default since torch 2.9; it needs
``onnxscript``); the older TorchScript exporter is deprecated and will be removed. Inference does not import
torch at all.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from voxemo.core.config import Config
from voxemo.core.errors import ModelError, first_line
from voxemo.core.version import version
from voxemo.dsp.features import segment_frames
from voxemo.io.files import atomic_path
from voxemo.io.modelfile import (
    FORMAT,
    INPUT,
    META_CONFIG,
    META_FORMAT,
    META_LABELS,
    META_STATE,
    META_TEMPERATURE,
    META_VERSION,
    META_WEIGHTS,
    OUTPUT,
)


def export_network(model: torch.nn.Module, config: Config, classes: Sequence[str], temperature: float,
                   path: str | os.PathLike[str], *, opset: int | None = None,
                   weights_digest: str | None = None) -> Path:
    """Write a network, its config, labels and softmax temperature to one ``.onnx`` file (atomically).

    Parameters
    ----------
    model : torch.nn.Module
        The trained network (:class:`~voxemo.nn.model.EmotionCNN` or an ensemble), in eval mode.
    config : Config
        The recipe it was trained with (preprocessing is rebuilt from it at prediction time).
    classes : sequence of str
        Labels in the order of the output columns.
    temperature : float
        Softmax temperature applied before window averaging (1 = uncalibrated).
    path : path-like
        Output file; by convention it ends in ``.onnx``.
    opset : int, optional
        ONNX opset; None lets the exporter choose.
    weights_digest : str, optional
        SHA-256 of the ``weights.pt`` holding these weights, stored so that :func:`voxemo.load_model` can
        tell a folder's ``model.onnx`` still matches its weights.

    Returns
    -------
    Path
        The written file.
    """

    class Probabilities(torch.nn.Module):  # the network and its softmax: the graph outputs probabilities
        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.net(x), dim=1)

    out = Path(path)
    if out.is_dir():
        raise ModelError(f"{out}: is a folder; give the .onnx file to write")
    cfg = config
    example = torch.zeros(2, cfg.features.n_mels, segment_frames(cfg.audio, cfg.features))
    net = Probabilities(model).eval()
    try:
        with _quiet_exporter():
            program = torch.onnx.export(net, (example,), dynamo=True, input_names=[INPUT], output_names=[OUTPUT],
                                        dynamic_shapes=({0: torch.export.Dim("batch")},), opset_version=opset,
                                        verbose=False)
    except Exception as exc:  # the exporter raises many types; the user needs one line
        raise ModelError(f"{out}: ONNX export failed ({first_line(exc)})") from None
    if program is None:  # only the deprecated TorchScript path returns None
        raise ModelError(f"{out}: ONNX export failed (the exporter returned no program)")
    program.model.metadata_props.update({
        META_FORMAT: FORMAT,
        META_CONFIG: json.dumps(cfg.to_dict()),
        META_LABELS: json.dumps([str(c) for c in classes]),
        META_VERSION: version(),
        META_TEMPERATURE: repr(float(temperature)),
        **({META_WEIGHTS: weights_digest} if weights_digest else {}),
        META_STATE: _state_record(model, program.model_proto),
    })
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(out) as tmp:
            program.save(str(tmp), external_data=False)
    except OSError as exc:
        raise ModelError(f"{out}: cannot write ({exc.strerror or exc})") from None
    return out


def _state_record(model: torch.nn.Module, proto: Any) -> str:
    """:data:`~voxemo.io.modelfile.META_STATE` of an exported network: each state entry that a graph initializer
    holds exactly (``net.<name>``) by that initializer's name, the others (buffers the exporter folded into
    constants, counters) in a base64 ``.npz``, so the graph file alone rebuilds ``model.state_dict()`` bit for bit
    (:func:`state_from_onnx`)."""
    from onnx import numpy_helper

    initializers = {i.name: i for i in proto.graph.initializer}
    graph, extra = {}, {}
    for key, value in model.state_dict().items():
        held = initializers.get(f"net.{key}")
        array = value.detach().cpu().numpy()
        if held is not None and np.array_equal(numpy_helper.to_array(held), array) \
                and numpy_helper.to_array(held).dtype == array.dtype:
            graph[key] = held.name
        else:
            extra[key] = array
    buffer = io.BytesIO()
    np.savez(buffer, **extra)
    return json.dumps({"graph": graph, "extra": base64.b64encode(buffer.getvalue()).decode("ascii")})


def state_from_onnx(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The torch state dict of the network in an ``.onnx`` file written by :func:`export_network`.

    Raises
    ------
    ModelError
        The file is unreadable or was exported before the state was recorded in it.
    """
    import onnx
    from onnx import numpy_helper

    try:
        proto = onnx.load(str(path))
        meta = {p.key: p.value for p in proto.metadata_props}
        record = json.loads(meta[META_STATE])
        initializers = {i.name: i for i in proto.graph.initializer}
        state = {k: torch.from_numpy(numpy_helper.to_array(initializers[name]).copy())
                 for k, name in record["graph"].items()}
        with np.load(io.BytesIO(base64.b64decode(record["extra"])), allow_pickle=False) as extra:
            state.update({k: torch.from_numpy(extra[k].copy()) for k in extra.files})
    except KeyError:
        raise ModelError(f"{path}: holds no torch state (exported by an older voxemo); keep its weights.pt beside "
                         "it") from None
    except (OSError, ValueError, TypeError, onnx.checker.ValidationError) as exc:
        raise ModelError(f"{path}: cannot read the network's state ({first_line(exc)})") from None
    return state


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
            # a recurrent layer's flat weight list (model.recurrent) is re-assigned while tracing; harmless
            warnings.filterwarnings("ignore", "The tensor attributes", UserWarning)
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
