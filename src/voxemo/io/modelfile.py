"""The model-folder format in one place: file names, the ONNX file's metadata keys, and the calibration file.

A CNN model folder holds ``weights.pt`` (a torch state dict) or ``model.onnx`` or both, ``config.json`` (the full
:class:`~voxemo.core.config.Config`), ``labels.json``, from training ``training.json``, optionally
``calibration.json`` (the softmax temperature; absent means T = 1), ``model.onnx`` (the same network for ONNX
Runtime, stamped with the SHA-256 of the ``weights.pt`` it was exported from, and carrying the whole torch state:
the shipped folders keep only this file), ``source_stats.npz`` (the training
speech's normalisation moments, which adaptation needs) and, for an adapted model, ``adaptation.json`` and
``MODEL_CARD.md``. A standalone ``.onnx`` file carries
the config, labels and temperature in its metadata, so that file alone is a model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from voxemo.core.errors import ModelError
from voxemo.io.files import atomic_write_text

WEIGHTS, CONFIG, LABELS, ONNX_FILE = "weights.pt", "config.json", "labels.json", "model.onnx"

#: the training speech's normalisation moments, per member and layer (:mod:`voxemo.nn.adapt`), for adaptation
SOURCE_STATS = "source_stats.npz"

#: what an adapted model was adapted on (clips, hours, a digest of the list, date), and its model card
ADAPTATION, MODEL_CARD = "adaptation.json", "MODEL_CARD.md"


def folder_calibration(d: Path) -> tuple[float, dict[str, Any]]:
    """A model folder's temperature and the ``calibration.json`` it came from (1.0 and {} without that file)."""
    temperature = load_temperature(d)
    return temperature, json.loads((d / CALIBRATION).read_text()) if temperature != 1.0 else {}


#: metadata_props keys written by :func:`export_onnx`
META_FORMAT, META_CONFIG = "voxemo.format", "voxemo.config"

META_LABELS, META_VERSION = "voxemo.labels", "voxemo.version"

META_TEMPERATURE = "voxemo.temperature"  # softmax temperature; absent in older exports: 1

META_WEIGHTS = "voxemo.weights_sha256"  # SHA-256 of the weights.pt exported, when exported into a model folder

#: the network's whole torch state: which graph initializer holds each entry, and the entries no initializer holds
#: exactly (base64 .npz), so a folder with only ``model.onnx`` still adapts and fine-tunes with torch
META_STATE = "voxemo.state"

FORMAT = "voxemo-onnx-1"

INPUT, OUTPUT = "logmel", "probabilities"

CALIBRATION = "calibration.json"


# ---- model folders -------------------------------------------------------------------------------------------
def save_calibration(model_dir: str | os.PathLike[str], calibration: dict[str, Any]) -> Path:
    """Write ``calibration.json`` (must hold a positive ``temperature``) into a model folder."""
    t = calibration.get("temperature")
    if not isinstance(t, (int, float)) or not t > 0:
        raise ModelError(f"calibration temperature={t!r} must be a positive number")
    return atomic_write_text(Path(model_dir) / CALIBRATION, json.dumps(calibration, indent=2))


def load_temperature(model_dir: str | os.PathLike[str]) -> float:
    """The temperature stored in a model folder's ``calibration.json``; 1.0 when the folder has none."""
    path = Path(model_dir) / CALIBRATION
    if not path.is_file():
        return 1.0
    try:
        t = json.loads(path.read_text())["temperature"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{path}: unreadable calibration ({type(exc).__name__}: {exc})") from None
    if not isinstance(t, (int, float)) or isinstance(t, bool) or not 0 < t < float("inf"):
        raise ModelError(f"{path}: temperature={t!r} must be a positive number")
    return float(t)
