"""Unsupervised adaptation of a trained network's normalisation statistics to a new domain (AdaBN, done with care).

A CNN standardises its log-mel input per mel bin and normalises each convolution block's channels with batch-norm
statistics, all measured on the training corpus. A new corpus (another language, microphone, room or phone line)
shifts those distributions, and the first layers then feed the later ones values they were never trained on.

The stored statistics describe the training *windows*, whose padding (the -80 dB floor around short clips) is a large
share of every value; replacing them with the target's speech statistics, as plain AdaBN does, breaks the padding's
normalisation and measured worse than no adaptation at all (docs/results.md, "Adaptation"). So the model keeps its
training speech's moments per layer (:func:`measure_source`, stored as ``source_stats.npz``), and
:func:`adapt_norm_stats` composes each normalisation layer with the affine map that takes the target speech's moments
to the training speech's, layer after layer (each measured through the layers before it, already adapted), with the
target's moments shrunk towards the training ones when there is little target audio.

Only real frames count: the clips' spectrograms (trimmed speech) are joined end to end along time and cut into long
chunks, never padded to a window's length, so a one-word clip weighs by its frames and even clips shorter than the
network's total pooling reach every layer. The network is changed in place; the caller passes a copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from voxemo.nn.model import EmotionCNN, EmotionEnsemble

#: fewest frames adaptation measures (about 1.5 s at the default hop; adaptation sets refuse far less speech)
MIN_FRAMES = 64

#: frames per chunk of joined clips (about 190 s of audio at the default hop; ~40 MB of activations in the widest
#: layer of the default CNN)
CHUNK_FRAMES = 8192


class _Reached(Exception):
    """Raised by the statistics hook to stop a forward pass at the layer being measured."""


@dataclass(frozen=True)
class LayerShift:
    """How far adaptation moved one normalisation layer: the mean absolute change of its means and of its
    standard deviations, each in units of the training standard deviation."""

    layer: str
    mean_shift: float
    std_ratio: float

    def to_dict(self) -> dict[str, float | str]:
        return {"layer": self.layer, "mean_shift": round(self.mean_shift, 4), "std_ratio": round(self.std_ratio, 4)}


def joined_chunks(specs: Sequence[np.ndarray], chunk_frames: int = CHUNK_FRAMES) -> list[np.ndarray]:
    """Join log-mels (n_mels, t_i) end to end along time and cut the result into equal chunks of at most
    ``chunk_frames`` frames (equal, so that none is too short for the network's pooling): the real frames of every
    clip, no padding. Returns arrays (n_mels, t)."""
    if not specs:
        return []
    joined = np.concatenate([np.asarray(s, dtype=np.float32) for s in specs], axis=1)
    n = -(-joined.shape[1] // chunk_frames)
    return [c for c in np.array_split(joined, n, axis=1) if c.shape[1]]


def _norm_layers(cnn: EmotionCNN) -> list[tuple[str, nn.BatchNorm2d]]:
    """The batch-norm layers in forward order (module registration order is the order they run in)."""
    return [(name, m) for name, m in cnn.named_modules() if isinstance(m, nn.BatchNorm2d)]


def _moments(activations: Sequence[torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (population) variance per channel over every position of (batch, channel, freq, time) tensors."""
    total = sq = None
    count = 0
    for h in activations:
        d = h.double()
        s, q = d.sum(dim=(0, 2, 3)), (d * d).sum(dim=(0, 2, 3))
        total, sq = (s, q) if total is None or sq is None else (total + s, sq + q)
        count += h.shape[0] * h.shape[2] * h.shape[3]
    if total is None or sq is None or count == 0:
        raise ValueError("no frames reached a normalisation layer")
    mean = total / count
    return mean.numpy(), (sq / count - mean * mean).clamp_min(0.0).numpy()


def _frame_moments(chunks: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance per mel bin over every frame of the chunks: what the input standardisation sees."""
    frames = np.concatenate(list(chunks), axis=1).astype(np.float64)
    return frames.mean(axis=1), frames.var(axis=1)


def _channel_moments(cnn: EmotionCNN, layer: nn.BatchNorm2d,
                     chunks: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_moments` of ``layer``'s input over every chunk, each chunk run from the input up to that layer."""
    seen: list[torch.Tensor] = []

    def hook(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        seen.append(args[0])
        raise _Reached

    handle = layer.register_forward_pre_hook(hook)
    try:
        with torch.inference_mode():
            for chunk in chunks:
                try:
                    cnn.embed(torch.from_numpy(np.ascontiguousarray(chunk))[None])
                except _Reached:
                    pass
    finally:
        handle.remove()
    return _moments(seen)


@dataclass(frozen=True)
class SourceStats:
    """The training corpus' speech as one CNN's normalisation layers see it: per layer (the input standardisation,
    then each batch-norm layer in forward order) the mean and variance per mel bin or channel over the real frames
    of the training clips, measured through the trained network (:func:`measure_source`)."""

    means: tuple[np.ndarray, ...]
    variances: tuple[np.ndarray, ...]
    frames: int


def layer_moments(cnn: EmotionCNN, chunks: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Mean and variance of the input (per mel bin) and of every batch-norm layer's input (per channel) over all
    frames of ``chunks``, through the network as it is (one forward pass, :class:`_Walk`)."""
    walk = _Walk(cnn, chunks)
    return [_frame_moments(chunks), *(walk.moments(layer) for _, layer in _norm_layers(cnn))]


def measure_source(model: EmotionCNN | EmotionEnsemble, specs: Sequence[np.ndarray]) -> list[SourceStats]:
    """Each member's :class:`SourceStats` on the training clips ``specs`` (log-mels, real frames only); stored
    with the model so that adaptation can compare like with like."""
    chunks = joined_chunks(specs)
    if not chunks:
        raise ValueError("no training frames to measure")
    n = sum(c.shape[1] for c in chunks)
    out = []
    for cnn in members(model):
        moments = layer_moments(cnn.eval(), chunks)
        out.append(SourceStats(tuple(m for m, _ in moments), tuple(v for _, v in moments), n))
    return out


def _moved(run_mean: np.ndarray, run_std: np.ndarray, target: tuple[np.ndarray, np.ndarray], source_mean: np.ndarray,
           source_var: np.ndarray, weight: float) -> tuple[np.ndarray, np.ndarray]:
    """New (mean, std) of a normalisation layer that maps the target's speech where the source's speech was.

    The layer's statistics describe the training windows, padding included, so they are not replaced: the layer is
    composed with the affine map that takes the target speech's moments (shrunk towards the source's by
    ``1 - weight``) to the source speech's, ``x -> (x - mu_t) * s_s / s_t + mu_s``. Normalising with
    ``mean' = mu_t + (mean - mu_s) * s_t / s_s`` and ``std' = std * s_t / s_s`` is that composition.
    """
    mean_t = (1.0 - weight) * source_mean + weight * target[0]
    var_t = (1.0 - weight) * source_var + weight * target[1]
    ratio = np.sqrt(var_t + 1e-5) / np.sqrt(source_var + 1e-5)
    return mean_t + (run_mean - source_mean) * ratio, run_std * ratio


def adapt_member(cnn: EmotionCNN, chunks: Sequence[np.ndarray], source: SourceStats, weight: float) -> list[LayerShift]:
    """Adapt one CNN's input standardisation and batch-norm statistics to the target frames ``chunks``, in place.

    Layer by layer: each layer's target moments are measured through the layers before it, already adapted.

    Parameters
    ----------
    cnn : EmotionCNN
    chunks : sequence of np.ndarray, each (n_mels, t)
        The target's real frames (:func:`joined_chunks`).
    source : SourceStats
        The same CNN's moments on its training speech.
    weight : float in (0, 1]
        Share of the target's moments; the rest is the source's (shrinkage; see :func:`_moved`).

    Returns
    -------
    list of LayerShift
        The input standardisation first, then each batch-norm layer in forward order.
    """
    cnn.eval()
    layers = _norm_layers(cnn)
    if len(source.means) != len(layers) + 1:
        raise ValueError(f"source statistics for {len(source.means) - 1} batch-norm layers, the network has "
                         f"{len(layers)}")
    old_mean, old_std = cnn.feature_mean.clone(), cnn.feature_std.clone()
    mean, std = _moved(old_mean.double().numpy(), old_std.double().numpy(), _frame_moments(chunks),
                       source.means[0], source.variances[0], weight)
    cnn.feature_mean.copy_(torch.from_numpy(mean))
    cnn.feature_std.copy_(torch.from_numpy(std).clamp_min(1e-3))
    shifts = [_shift("input", old_mean, old_std, cnn.feature_mean, cnn.feature_std)]
    walk = _Walk(cnn, chunks)
    for k, (name, layer) in enumerate(layers, start=1):
        if layer.running_mean is None or layer.running_var is None:
            raise ValueError(f"{name}: batch norm without running statistics")
        old_mean, old_var = layer.running_mean.clone(), layer.running_var.clone()
        old_std = (old_var.double() + layer.eps).sqrt()
        mean, std = _moved(old_mean.double().numpy(), old_std.numpy(), walk.moments(layer),
                           source.means[k], source.variances[k], weight)
        layer.running_mean.copy_(torch.from_numpy(mean))
        layer.running_var.copy_(torch.from_numpy(std**2 - layer.eps).clamp_min(0.0))
        shifts.append(_shift(name, old_mean, old_var.sqrt(), layer.running_mean, layer.running_var.sqrt()))
    return shifts


class _Walk:
    """The chunks' activations, advanced through the network one batch-norm layer at a time: each layer's
    input is computed once from the previous layer's (already adapted) input, so measuring every layer costs one
    forward pass. Networks whose batch norms sit inside sub-modules (residual units) are measured with a hook and
    a pass from the input per layer (:func:`_channel_moments`)."""

    def __init__(self, cnn: EmotionCNN, chunks: Sequence[np.ndarray]) -> None:
        self.cnn, self.chunks = cnn, chunks
        self.children = list(cnn.features)
        self.flat = all(any(layer is c for c in self.children) for _, layer in _norm_layers(cnn))
        self.h: list[torch.Tensor] | None = None
        self.at = 0  # index in cnn.features of the module the activations in self.h enter next

    def moments(self, layer: nn.BatchNorm2d) -> tuple[np.ndarray, np.ndarray]:
        if not self.flat:
            return _channel_moments(self.cnn, layer, self.chunks)
        cnn = self.cnn
        with torch.inference_mode():
            if self.h is None:  # the standardised input, with the statistics adapted just before
                self.h = [((torch.from_numpy(np.ascontiguousarray(c)) - cnn.feature_mean[:, None])
                           / cnn.feature_std[:, None])[None, None].contiguous(memory_format=torch.channels_last)
                          for c in self.chunks]
            stop = next(i for i, c in enumerate(self.children) if c is layer)
            block = nn.Sequential(*self.children[self.at : stop])
            self.h = [block(h) for h in self.h]
            self.at = stop
            return _moments(self.h)


def _shift(name: str, mean0: torch.Tensor, std0: torch.Tensor, mean1: torch.Tensor, std1: torch.Tensor) -> LayerShift:
    scale = std0.double().clamp_min(1e-6)
    return LayerShift(name, float(((mean1.double() - mean0.double()).abs() / scale).mean()),
                      float((std1.double() / scale).mean()))


def members(model: EmotionCNN | EmotionEnsemble) -> list[EmotionCNN]:
    """The CNNs of a model: itself, or each member of an ensemble."""
    if isinstance(model, EmotionEnsemble):
        return [m for m in model.members if isinstance(m, EmotionCNN)]
    return [model]


def adapt_norm_stats(model: EmotionCNN | EmotionEnsemble, specs: Sequence[np.ndarray], source: Sequence[SourceStats],
                     weight: float, *, chunk_frames: int = CHUNK_FRAMES) -> list[list[LayerShift]]:
    """Adapt every member of ``model`` to the target clips ``specs`` (log-mels, (n_mels, t_i), real frames only),
    in place, given each member's :class:`SourceStats`; ``weight`` is the target's share of each moment. Returns
    each member's layer shifts."""
    if not 0.0 < weight <= 1.0:
        raise ValueError(f"weight={weight!r} must be in (0, 1]")
    cnns = members(model)
    if len(source) != len(cnns):
        raise ValueError(f"source statistics for {len(source)} networks, the model has {len(cnns)}")
    chunks = joined_chunks(specs, chunk_frames)
    if sum(c.shape[1] for c in chunks) < MIN_FRAMES:
        raise ValueError(f"{sum(c.shape[1] for c in chunks)} target frames are too few to adapt on (at least "
                         f"{MIN_FRAMES})")
    return [adapt_member(cnn, chunks, s, weight) for cnn, s in zip(cnns, source)]


def stats_arrays(stats: Sequence[SourceStats]) -> dict[str, np.ndarray]:
    """Flat named arrays for ``np.savez`` (``m{member}_{layer}_mean``/``_var`` and ``m{member}_frames``)."""
    out: dict[str, np.ndarray] = {}
    for i, s in enumerate(stats):
        out[f"m{i}_frames"] = np.array(s.frames)
        for k, (mean, var) in enumerate(zip(s.means, s.variances)):
            out[f"m{i}_{k}_mean"], out[f"m{i}_{k}_var"] = mean, var
    return out


def stats_from_arrays(arrays: dict[str, np.ndarray]) -> list[SourceStats]:
    """The inverse of :func:`stats_arrays`."""
    out = []
    i = 0
    while f"m{i}_frames" in arrays:
        means, variances = [], []
        k = 0
        while f"m{i}_{k}_mean" in arrays:
            means.append(np.asarray(arrays[f"m{i}_{k}_mean"], np.float64))
            variances.append(np.asarray(arrays[f"m{i}_{k}_var"], np.float64))
            k += 1
        out.append(SourceStats(tuple(means), tuple(variances), int(arrays[f"m{i}_frames"])))
        i += 1
    return out
