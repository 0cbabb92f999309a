"""The ``voice`` family's frozen encoder, built once: Resemblyzer's speaker encoder as an ONNX file.

The encoder is Resemblyzer's speaker encoder (a 3-layer LSTM over 40-band mel frames at 16 kHz, trained to tell
apart thousands of speakers of LibriSpeech and VoxCeleb 1 and 2, so of many languages and recording conditions;
Apache-2.0, https://github.com/resemble-ai/Resemblyzer). Each window of speech is described by the LSTM's final
hidden and cell states of all three layers and the mean and spread of the top layer's outputs over time (2,048
values). :func:`export_encoder` writes that function to ``voxemo/models/encoders/resemblyzer-voice.onnx``, shipped
once and named by every voice model's ``encoder.json``; the model itself is a :class:`voxemo.nn.probe.ProbeHead`
over these features, trained, adapted and run like every encoder family's (no torch at prediction).

The input is voxemo's log-mel (dB relative to the clip's loudest bin) with the encoder's analysis
(:data:`voxemo.nn.probe.VOICE_ANALYSIS`); it is turned back into mel power, at the level the encoder was trained
on, inside the graph, so training, prediction and adaptation share the one preprocessing path. Building needs torch
and the encoder's weights file (``pip install --no-deps resemblyzer==0.1.4``), never at run time.
"""

from __future__ import annotations

import importlib.util
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from voxemo.core.errors import ModelError
from voxemo.nn.probe import VOICE_ANALYSIS

N_MELS = int(VOICE_ANALYSIS["features"]["n_mels"])
HIDDEN = 256
LAYERS = 3
#: mel power of the loudest bin of a clip normalised as the encoder's training audio was (-30 dBFS RMS), the
#: median over RAVDESS: voxemo's log-mel is relative to that bin, so this puts the encoder's input at its level
LOUDEST_BIN_POWER = 2.8
#: frames of the example window the export traces (the family's 1.6-s windows)
EXAMPLE_FRAMES = 161


class VoiceEncoder(nn.Module):
    """Log-mel windows (batch, 40, frames) in dB -> pooled LSTM features (batch, 2048), frozen."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(N_MELS, HIDDEN, LAYERS, batch_first=True)
        self.lstm.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        power = torch.pow(10.0, x / 10.0) * LOUDEST_BIN_POWER
        out, (h, c) = self.lstm(power.transpose(1, 2))
        states = torch.cat([h.transpose(0, 1).flatten(1), c.transpose(0, 1).flatten(1)], dim=1)
        # std with the population formula written out: ONNX exports it on every opset
        mean = out.mean(dim=1)
        spread = ((out - mean[:, None]) ** 2).mean(dim=1).clamp_min(1e-12).sqrt()
        return torch.cat([states, mean, spread], dim=1)


def encoder_weights_path() -> Path:
    """Resemblyzer's pretrained encoder file, found without importing the package (its import loads librosa and
    webrtcvad). Needed only to build the encoder file."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("building the voice encoder needs its pretrained weights: "
                         "pip install --no-deps resemblyzer==0.1.4 (only its weights file is read)")
    path = Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"
    if not path.is_file():
        raise ModelError(f"{path}: the pretrained voice encoder is missing from the resemblyzer package")
    return path


def build_encoder(path: str | Path | None = None) -> VoiceEncoder:
    """The encoder with Resemblyzer's pretrained LSTM weights (``path``, default: the installed package's)."""
    state = torch.load(path or encoder_weights_path(), map_location="cpu", weights_only=False)["model_state"]
    encoder = VoiceEncoder()
    encoder.lstm.load_state_dict({k.removeprefix("lstm."): v for k, v in state.items() if k.startswith("lstm.")})
    return encoder.eval()


def export_encoder(encoder: VoiceEncoder, path: str | Path) -> Path:
    """Write ``encoder`` to ONNX (float32) with dynamic batch and time axes: input ``logmel`` (batch, 40, frames)
    in dB, output ``features`` (batch, 2048). Traced with one window (the exporter's advice for an LSTM); voxemo
    runs it one window at a time (:func:`voxemo.inference.encoders.encode`)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    example = -40.0 * torch.rand(1, N_MELS, EXAMPLE_FRAMES, generator=torch.Generator().manual_seed(0))
    with tempfile.TemporaryDirectory(prefix="voxemo-voice-") as tmp:
        plain = Path(tmp) / "encoder.onnx"
        with warnings.catch_warnings():  # the tracer's notes on the LSTM's shape checks and batch size: traced
            warnings.simplefilter("ignore")  # with one window, run one window at a time
            torch.onnx.export(encoder, (example,), str(plain), input_names=["logmel"], output_names=["features"],
                              dynamic_axes={"logmel": {0: "batch", 2: "frames"}, "features": {0: "batch"}},
                              opset_version=17, dynamo=False)
        out.write_bytes(plain.read_bytes())
    return out
