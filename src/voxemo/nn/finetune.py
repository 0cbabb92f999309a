"""Few-shot adaptation with labels: fine-tune a trained network on a handful of labelled clips from the target
domain, staying close to the trained weights.

Which parameters move is a choice (:data:`SCOPES`): only the output layer (``head``), the output layer and every
batch-norm scale and shift (``norm``), or everything (``all``). Every step draws one random window from each labelled
clip (as training does), and the loss is cross-entropy plus an L2 pull towards the starting weights (L2-SP), so that
a few dozen clips refine the model rather than replace it. When only the head trains, each clip's windows are
embedded once (a bank of :data:`WINDOW_BANK` random windows per clip) and the steps cost next to nothing. Batch-norm
statistics stay frozen (a batch of a few
dozen windows is too small to measure them; :mod:`voxemo.nn.adapt` re-measures them from unlabelled audio).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from voxemo.core.config import Config
from voxemo.core.errors import ConfigError
from voxemo.dsp.features import pad_value, segment_frames
from voxemo.nn.adapt import members
from voxemo.nn.model import EmotionCNN, EmotionEnsemble
from voxemo.nn.train import random_segments

#: which parameters fine-tuning may change
SCOPES = ("head", "norm", "all")

#: random windows per clip embedded once when only the head trains (each step draws one of them per clip)
WINDOW_BANK = 16


@dataclass(frozen=True)
class FineTuneConfig:
    """A few-shot fine-tuning recipe.

    Attributes
    ----------
    scope : {"head", "norm", "all"}
        Parameters trained: the output layer; it and the batch-norm affine parameters; or all.
    steps : int
        Optimiser steps, each over one random window of every labelled clip.
    lr : float
        Adam learning rate.
    l2sp : float
        Weight of the squared distance to the starting parameters.
    seed : int
    """

    scope: str = "head"
    steps: int = 100
    lr: float = 1e-2
    l2sp: float = 0.01
    seed: int = 0

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ConfigError(f"scope={self.scope!r} is not one of {', '.join(SCOPES)}")
        if self.steps < 1:
            raise ConfigError(f"steps={self.steps!r} must be a positive integer")
        if not self.lr > 0 or not self.l2sp >= 0:
            raise ConfigError(f"lr={self.lr!r} must be positive and l2sp={self.l2sp!r} non-negative")

    def to_dict(self) -> dict[str, object]:
        return {"scope": self.scope, "steps": self.steps, "lr": self.lr, "l2sp": self.l2sp, "seed": self.seed}


def _trainable(cnn: EmotionCNN, scope: str) -> list[nn.Parameter]:
    if scope == "all":
        return list(cnn.parameters())
    params = list(cnn.classifier.parameters())
    if scope == "norm":
        params += [p for m in cnn.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters()]
    return params


def fine_tune_member(cnn: EmotionCNN, specs: Sequence[np.ndarray], labels: np.ndarray, config: Config,
                     recipe: FineTuneConfig) -> list[float]:
    """Fine-tune one CNN in place on labelled log-mels; returns the loss of every step."""
    torch.manual_seed(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    n_frames, fill = segment_frames(config.audio, config.features), pad_value(config.features)
    params = _trainable(cnn, recipe.scope)
    ids = {id(p) for p in params}
    for p in cnn.parameters():
        p.requires_grad_(id(p) in ids)
    anchor = [p.detach().clone() for p in params]
    optimiser = torch.optim.Adam(params, lr=recipe.lr)
    y = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    losses = []
    cnn.eval()  # frozen batch-norm statistics and no dropout: a few dozen windows cannot re-measure them
    bank = None
    if recipe.scope == "head":  # the network below the head does not change: embed a bank of windows once
        with torch.no_grad():
            bank = torch.stack([cnn.embed(torch.from_numpy(random_segments(specs, n_frames, fill, rng)))
                                for _ in range(min(WINDOW_BANK, recipe.steps))], dim=1)  # (clips, bank, size)
    try:
        for _ in range(recipe.steps):
            if bank is not None:
                pick = torch.from_numpy(rng.integers(0, bank.shape[1], len(specs)))
                logits = cnn.head(bank[torch.arange(len(specs)), pick])
            else:
                logits = cnn(torch.from_numpy(random_segments(specs, n_frames, fill, rng)))
            loss = nn.functional.cross_entropy(logits, y)
            pull = sum(((p - a) ** 2).sum() for p, a in zip(params, anchor))
            total = loss + recipe.l2sp * pull
            optimiser.zero_grad()
            total.backward()
            optimiser.step()
            losses.append(float(loss.detach()))
    finally:
        for p in cnn.parameters():
            p.requires_grad_(True)
    return losses


def fine_tune(model: EmotionCNN | EmotionEnsemble, specs: Sequence[np.ndarray], labels: np.ndarray, config: Config,
              recipe: FineTuneConfig) -> list[list[float]]:
    """Fine-tune every member of ``model`` in place (member ``i`` with seed ``recipe.seed + i``); returns each
    member's losses."""
    if len(specs) != len(labels) or not len(specs):
        raise ConfigError(f"fine-tuning needs one label per clip and at least one clip (got {len(specs)} clips, "
                          f"{len(labels)} labels)")
    out = []
    for i, cnn in enumerate(members(model)):
        member_recipe = FineTuneConfig(recipe.scope, recipe.steps, recipe.lr, recipe.l2sp, recipe.seed + i)
        out.append(fine_tune_member(cnn, specs, labels, config, member_recipe))
    return out
