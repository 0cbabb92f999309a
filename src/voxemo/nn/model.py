"""The CNN that classifies fixed-length log-mel segments, and an ensemble of them."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from voxemo.core.config import ModelConfig


class ResidualConv(nn.Module):
    """``relu(x + bn(conv3x3(x)))``: one more convolution at a block's output resolution, with an identity shortcut
    around it (a residual unit; the shortcut keeps the deeper network as easy to train as the plain one)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.norm(self.conv(x)))


class RelaxedFreqNorm(nn.Module):
    """Relaxed instance frequency-wise normalisation (Kim et al., 2022): ``w * IFN(x) + (1 - w) * LN(x)``, where
    IFN normalises each clip's feature maps per frequency band over channels and time and LN over everything.
    Parameter-free and the same at training and prediction."""

    def __init__(self, weight: float, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight, self.eps = weight, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, channels, freq, time)
        ifn = (x - x.mean(dim=(1, 3), keepdim=True)) / (x.var(dim=(1, 3), keepdim=True) + self.eps).sqrt()
        ln = (x - x.mean(dim=(1, 2, 3), keepdim=True)) / (x.var(dim=(1, 2, 3), keepdim=True) + self.eps).sqrt()
        return self.weight * ifn + (1.0 - self.weight) * ln


class MixStyle(nn.Module):
    """MixStyle (Zhou et al., 2021): with probability ``p`` per training batch, each clip's channel means and
    standard deviations (over frequency and time) are mixed with those of another clip of the batch, weights from
    Beta(0.1, 0.1): new "styles" (speakers, rooms, corpora) with the same content. The identity at prediction."""

    def __init__(self, p: float, alpha: float = 0.1, eps: float = 1e-6) -> None:
        super().__init__()
        self.p, self.eps = p, eps
        self.beta = torch.distributions.Beta(alpha, alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or x.shape[0] < 2 or torch.rand(()) >= self.p:
            return x
        mu = x.mean(dim=(2, 3), keepdim=True)
        sig = (x.var(dim=(2, 3), keepdim=True) + self.eps).sqrt()
        mu, sig = mu.detach(), sig.detach()
        lam = self.beta.sample((x.shape[0], 1, 1, 1)).to(x.dtype)
        perm = torch.randperm(x.shape[0])
        mixed_mu, mixed_sig = lam * mu + (1 - lam) * mu[perm], lam * sig + (1 - lam) * sig[perm]
        return (x - mu) / sig * mixed_sig + mixed_mu


class EmotionCNN(nn.Module):
    """Conv blocks over a (n_mels, n_frames) log-mel, then mean+max pooling over time and a linear layer.

    Inputs are standardised per mel bin with ``feature_mean``/``feature_std`` buffers, fitted on the training
    set only (:meth:`fit_normalizer`) and saved with the weights.

    Parameters
    ----------
    n_mels : int
        Mel bins of the input.
    n_classes : int
        Number of output classes.
    config : ModelConfig
    """

    feature_mean: torch.Tensor
    feature_std: torch.Tensor
    classifier: nn.Linear

    def __init__(self, n_mels: int, n_classes: int, config: ModelConfig) -> None:
        super().__init__()
        self.register_buffer("feature_mean", torch.zeros(n_mels))
        self.register_buffer("feature_std", torch.ones(n_mels))
        blocks: list[nn.Module] = []
        c_in = 1
        for block, c_out in enumerate(config.channels):
            conv = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False)
            if config.pool_first:
                # pooling first: batch norm and ReLU run on a quarter of the values (their backward passes dominate
                # a CPU training step); max-pool commutes with ReLU, so only the normalisation statistics differ
                blocks += [conv, nn.MaxPool2d(2), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            else:
                blocks += [conv, nn.BatchNorm2d(c_out), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            if config.residual:
                blocks.append(ResidualConv(c_out))
            if block < 2 and config.freq_norm > 0:  # domain generalisation in the early, low-level blocks
                blocks.append(RelaxedFreqNorm(config.freq_norm))
            if block < 2 and config.mixstyle > 0:
                blocks.append(MixStyle(config.mixstyle))
            c_in = c_out
        self.features = nn.Sequential(*blocks)
        # per time step, either the channels averaged over the remaining mel bins or all (channel, bin) values
        self.flatten_freq = config.freq_pooling == "flatten"
        width = c_in * (n_mels >> len(config.channels)) if self.flatten_freq else c_in
        # a bidirectional GRU over the time steps, replacing each step's vector by its context-aware state
        self.recurrent = (nn.GRU(width, config.recurrent, batch_first=True, bidirectional=True)
                          if config.recurrent else None)
        width = 2 * config.recurrent if config.recurrent else width
        # attention pooling: a learned score per time step; the clip vector is the softmax-weighted mean
        self.attention = nn.Conv1d(width, 1, kernel_size=1) if config.pooling == "attention" else None
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(2 * width, n_classes)

    @property
    def n_classes(self) -> int:
        return self.classifier.out_features

    def fit_normalizer(self, specs: np.ndarray) -> None:
        """Set per-mel-bin mean and std from training segments, shape (n, n_mels, n_frames)."""
        x = torch.as_tensor(specs, dtype=torch.float32)
        self.feature_mean.copy_(x.mean(dim=(0, 2)))
        self.feature_std.copy_(x.std(dim=(0, 2)).clamp_min(1e-3))

    def init_output_bias(self, priors: np.ndarray) -> None:
        """Set the output bias to log class priors, so the untrained model predicts the class frequencies."""
        p = torch.as_tensor(priors, dtype=torch.float32).clamp_min(1e-6)
        with torch.no_grad():
            self.classifier.bias.copy_(torch.log(p / p.sum()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape (batch, n_classes) for log-mel segments of shape (batch, n_mels, n_frames)."""
        return self.head(self.embed(x))

    @property
    def embedding_size(self) -> int:
        return self.classifier.in_features

    def head(self, embedding: torch.Tensor) -> torch.Tensor:
        """Logits from clip vectors (:meth:`embed`): dropout, then the linear classifier."""
        return self.classifier(self.dropout(embedding))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The clip vector the classifier reads, shape (batch, embedding_size): the time-pooled features."""
        x = (x - self.feature_mean[:, None]) / self.feature_std[:, None]
        # channels-last convolutions are 1.3-1.6x faster on CPU for these small feature maps
        h = self.features(x.unsqueeze(1).contiguous(memory_format=torch.channels_last))  # (batch, ch, mels', frames')
        h = h.flatten(1, 2) if self.flatten_freq else h.mean(dim=2)  # (batch, width, frames')
        if self.recurrent is not None:
            h = self.recurrent(h.transpose(1, 2))[0].transpose(1, 2)
        if self.attention is not None:
            w = torch.softmax(self.attention(h), dim=2)  # (batch, 1, frames')
            h = torch.cat([(h * w).sum(dim=2), h.amax(dim=2)], dim=1)
        else:
            h = torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1)  # pool time
        return h


class EmotionEnsemble(nn.Module):
    """Several trained :class:`EmotionCNN` whose class probabilities are averaged.

    ``forward`` returns the log of the mean member probability, so ``softmax(forward(x))`` is that mean and
    everything downstream (prediction, temperature scaling, ONNX export) treats it like one CNN's logits.
    """

    def __init__(self, members: list[EmotionCNN]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    @property
    def n_classes(self) -> int:
        first: EmotionCNN = self.members[0]  # type: ignore[assignment]  # ModuleList items are typed as Module
        return first.n_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.stack([torch.softmax(m(x), dim=1) for m in self.members]).mean(dim=0)
        return torch.log(probs.clamp_min(1e-12))
