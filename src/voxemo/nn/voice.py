"""A pretrained voice encoder with a linear emotion head: the model least bound to its training corpus.

The encoder is Resemblyzer's speaker encoder (a 3-layer LSTM over 40-band mel frames at 16 kHz, trained to tell
apart thousands of speakers of LibriSpeech and VoxCeleb 1 and 2, so of many languages and recording conditions;
Apache-2.0, https://github.com/resemble-ai/Resemblyzer). Its weights are frozen. Each window of speech is
described by the LSTM's final hidden and cell states of all three layers and the mean and spread of the top layer's
outputs over time (2,048 values); those are standardised with the training speech's moments (or, after
:func:`voxemo.nn.adapt.adapt_norm_stats`, with the target's) and read by one linear layer fitted on RAVDESS.
docs/results.md ("A pretrained voice encoder") has how the features and the head were chosen.

The input is voxemo's log-mel (dB relative to the clip's loudest bin) with the encoder's analysis settings
(:data:`VOICE_FEATURES`); it is turned back into mel power, at the level the encoder was trained on, inside the
network, so training, prediction and the ONNX export share the one preprocessing path.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from voxemo.core.config import Config
from voxemo.core.errors import ModelError
from voxemo.dsp.features import pad_value, segment_frames, windows
from voxemo.nn.adapt import LayerShift

#: the encoder's analysis: 16 kHz, 25 ms windows every 10 ms, 40 mel bands from 0 to 8 kHz (as the encoder was
#: trained); 1.6 s windows (its training partials)
VOICE_AUDIO = {"sample_rate": 16000, "duration": 1.6}
VOICE_FEATURES = {"n_fft": 400, "hop_length": 160, "n_mels": 40, "fmin": 0.0, "fmax": None, "top_db": 80.0}
HIDDEN = 256
LAYERS = 3
#: mel power of the loudest bin of a clip normalised as the encoder's training audio was (-30 dBFS RMS), the
#: median over RAVDESS: voxemo's log-mel is relative to that bin, so this puts the encoder's input at its level
LOUDEST_BIN_POWER = 2.8
#: inverse L2 strength of the head's logistic regression, chosen on RAVDESS actor-6fold (docs/results.md)
HEAD_C = 0.01


class VoiceNet(nn.Module):
    """Frozen voice encoder, feature standardisation and a linear classifier.

    Same surface as :class:`voxemo.nn.model.EmotionCNN` where the rest of voxemo looks: :meth:`embed`,
    :meth:`head`, :attr:`classifier`, :attr:`embedding_size`, :attr:`n_classes`; the standardisation moments are
    the buffers ``embed_mean``/``embed_std`` (what unsupervised adaptation moves).
    """

    embed_mean: torch.Tensor
    embed_std: torch.Tensor

    def __init__(self, n_mels: int, n_classes: int) -> None:
        super().__init__()
        if n_mels != VOICE_FEATURES["n_mels"]:
            raise ModelError(f"the voice encoder reads {VOICE_FEATURES['n_mels']} mel bands, the config has {n_mels}")
        self.lstm = nn.LSTM(n_mels, HIDDEN, LAYERS, batch_first=True)
        self.lstm.requires_grad_(False)
        size = 2 * LAYERS * HIDDEN + 2 * HIDDEN
        self.register_buffer("embed_mean", torch.zeros(size))
        self.register_buffer("embed_std", torch.ones(size))
        self.classifier = nn.Linear(size, n_classes)

    @property
    def n_classes(self) -> int:
        return self.classifier.out_features

    @property
    def embedding_size(self) -> int:
        return self.classifier.in_features

    def raw_features(self, x: torch.Tensor) -> torch.Tensor:
        """Unstandardised window features (batch, 2048) from log-mel windows (batch, n_mels, n_frames)."""
        power = torch.pow(10.0, x / 10.0) * LOUDEST_BIN_POWER
        out, (h, c) = self.lstm(power.transpose(1, 2))
        states = torch.cat([h.transpose(0, 1).flatten(1), c.transpose(0, 1).flatten(1)], dim=1)
        # std with the population formula written out: ONNX exports it on every opset
        mean = out.mean(dim=1)
        spread = ((out - mean[:, None]) ** 2).mean(dim=1).clamp_min(1e-12).sqrt()
        return torch.cat([states, mean, spread], dim=1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Standardised window features, what the classifier reads: (batch, embedding_size)."""
        return (self.raw_features(x) - self.embed_mean) / self.embed_std

    def head(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.classifier(embedding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


def encoder_weights_path() -> Path:
    """Resemblyzer's pretrained encoder file, found without importing the package (its import loads librosa and
    webrtcvad). Needed only to build a voice model; a built one carries the weights in its own folder."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("building a voice model needs the pretrained encoder's weights: "
                         "pip install --no-deps resemblyzer==0.1.4 (only its weights file is read)")
    path = Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"
    if not path.is_file():
        raise ModelError(f"{path}: the pretrained voice encoder is missing from the resemblyzer package")
    return path


def load_encoder(net: VoiceNet, path: Path | None = None) -> None:
    """Copy the pretrained LSTM weights into ``net``."""
    state = torch.load(path or encoder_weights_path(), map_location="cpu", weights_only=False)["model_state"]
    lstm = {k.removeprefix("lstm."): v for k, v in state.items() if k.startswith("lstm.")}
    net.lstm.load_state_dict(lstm)


@torch.no_grad()
def window_features(net: VoiceNet, segments: np.ndarray, batch: int = 256) -> np.ndarray:
    """:meth:`VoiceNet.raw_features` of fixed-length windows (n, n_mels, n_frames), in batches: (n, 2048)."""
    net.eval()
    out = [net.raw_features(torch.as_tensor(segments[i : i + batch], dtype=torch.float32)).numpy()
           for i in range(0, len(segments), batch)]
    return np.concatenate(out) if out else np.zeros((0, net.embedding_size), np.float32)


def clip_windows(specs: Sequence[np.ndarray], config: Config) -> tuple[np.ndarray, np.ndarray]:
    """The windows prediction cuts from each log-mel (:func:`voxemo.dsp.features.windows`), stacked, and the clip
    each comes from: ((n_windows, n_mels, n_frames), (n_windows,))."""
    n, fill = segment_frames(config.audio, config.features), pad_value(config.features)
    cut = [windows(s, n, fill=fill) for s in specs]
    if not cut:
        return np.zeros((0, config.features.n_mels, n), np.float32), np.zeros(0, int)
    return np.concatenate(cut), np.repeat(np.arange(len(cut)), [len(w) for w in cut])


def fit_head_on(net: VoiceNet, raw: np.ndarray, labels: np.ndarray, *, c: float = HEAD_C) -> None:
    """Fit the standardisation and the linear layer of ``net`` to window features ``raw`` (n, 2048) labelled
    ``labels`` (n,): the windows' moments, then a multinomial logistic regression (L2, inverse strength ``c``,
    classes weighted to balance) copied into the linear layer."""
    from sklearn.linear_model import LogisticRegression  # scikit-learn only when a voice model is built

    present = np.unique(labels)
    if len(present) != net.n_classes:
        raise ModelError(f"the training clips hold {len(present)} of the model's {net.n_classes} classes")
    mean, std = raw.mean(axis=0), raw.std(axis=0) + 1e-6
    lr = LogisticRegression(C=c, max_iter=3000, class_weight="balanced").fit((raw - mean) / std, labels)
    with torch.no_grad():
        net.embed_mean.copy_(torch.as_tensor(mean))
        net.embed_std.copy_(torch.as_tensor(std))
        net.classifier.weight.copy_(torch.as_tensor(lr.coef_, dtype=torch.float32))
        net.classifier.bias.copy_(torch.as_tensor(lr.intercept_, dtype=torch.float32))


def adapt_voice(net: VoiceNet, specs: Sequence[np.ndarray], config: Config, weight: float) -> LayerShift:
    """Move the feature standardisation of ``net`` (the training speech's moments) towards the moments of the
    target clips' windows, cut as prediction cuts them; ``weight`` is the target's share (mixture moments). In
    place; returns how far the standardisation moved."""
    if not 0.0 < weight <= 1.0:
        raise ValueError(f"weight={weight!r} must be in (0, 1]")
    raw = window_features(net, clip_windows(specs, config)[0]).astype(np.float64)
    if not len(raw):
        raise ValueError("no target windows to adapt on")
    m0, s0 = net.embed_mean.double(), net.embed_std.double()
    mt, vt = torch.as_tensor(raw.mean(axis=0)), torch.as_tensor(raw.var(axis=0))
    mean = weight * mt + (1 - weight) * m0
    var = weight * (vt + (mt - mean) ** 2) + (1 - weight) * (s0**2 + (m0 - mean) ** 2)
    std = var.sqrt().clamp_min(1e-6)
    shift = LayerShift("features", float(((mean - m0).abs() / s0).mean()), float((std / s0).mean()))
    with torch.no_grad():
        net.embed_mean.copy_(mean.float())
        net.embed_std.copy_(std.float())
    return shift


def voice_config() -> Config:
    """A config with the encoder's analysis (the audio and feature sections every voice model has)."""
    return Config.from_dict({"audio": VOICE_AUDIO, "features": VOICE_FEATURES, "model": {"arch": "voice"}})
