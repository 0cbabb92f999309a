"""Training a :class:`~voxemo.nn.model.EmotionCNN` on log-mel spectrograms, and batch inference on them.

Spectrograms come in with their own lengths (trimmed speech); training takes a random fixed-length segment
of each per epoch (random crop of long clips, random placement of short ones inside the padding), then
SpecAugment masks and mixup. Inference averages the softmax over windows covering the whole clip.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from voxemo.core.config import Config, ModelConfig
from voxemo.core.errors import ConfigError
from voxemo.dsp.features import fix_frames, pad_value, segment_frames
from voxemo.dsp.scoring import average_windows
from voxemo.nn.model import EmotionCNN, EmotionEnsemble


@dataclass
class TrainResult:
    """A trained model and its per-epoch history (train loss; validation loss/accuracy/UAR when validated)."""

    model: EmotionCNN | EmotionEnsemble
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0

    def best(self) -> dict[str, float]:
        """The history row of the epoch whose weights were kept."""
        return self.history[self.best_epoch - 1] if self.history else {}


def set_threads(threads: int) -> None:
    """Use ``threads`` intra-op threads for torch (0 = leave torch's default: all cores)."""
    if threads > 0:
        torch.set_num_threads(threads)


def random_segments(specs: Sequence[np.ndarray], n_frames: int, fill: float, rng: np.random.Generator) -> np.ndarray:
    """One random fixed-length segment per spectrogram, shape (n, n_mels, n_frames)."""
    out = []
    for s in specs:
        slack = abs(s.shape[1] - n_frames)
        out.append(fix_frames(s, n_frames, offset=int(rng.integers(0, slack + 1)), fill=fill))
    return np.stack(out)


def centre_segments(specs: Sequence[np.ndarray], n_frames: int, fill: float) -> np.ndarray:
    """The centred fixed-length segment of each spectrogram, shape (n, n_mels, n_frames)."""
    return np.stack([fix_frames(s, n_frames, fill=fill) for s in specs])


def spec_augment(x: np.ndarray, config: Config, rng: np.random.Generator, fill: float) -> np.ndarray:
    """Mel-axis shift plus SpecAugment-style frequency and time masks, on a copy of x (n, n_mels, n_frames)."""
    x = x.copy()
    n, n_mels, n_frames = x.shape
    t = config.train
    for i in range(n):
        shift = int(rng.integers(-t.freq_shift, t.freq_shift + 1)) if t.freq_shift else 0
        if shift > 0:
            x[i, shift:] = x[i, :-shift].copy()
            x[i, :shift] = fill
        elif shift < 0:
            x[i, :shift] = x[i, -shift:].copy()
            x[i, shift:] = fill
        for _ in range(t.freq_masks):
            w = int(rng.integers(0, t.freq_mask_width + 1))
            f0 = int(rng.integers(0, max(1, n_mels - w)))
            x[i, f0 : f0 + w, :] = fill
        for _ in range(t.time_masks):
            w = int(rng.integers(0, t.time_mask_width + 1))
            t0 = int(rng.integers(0, max(1, n_frames - w)))
            x[i, :, t0 : t0 + w] = fill
    return x


def epoch_order(n: int, rng: np.random.Generator, weights: np.ndarray | None = None) -> np.ndarray:
    """The clip indices of one epoch: a permutation of ``range(n)``, or with ``weights`` (summing to 1) ``n``
    draws with replacement by weight (so each corpus can fill an equal share, see
    :func:`voxemo.experiment.multicorpus.corpus_weights`).

    >>> rng = np.random.default_rng(0)
    >>> sorted(epoch_order(4, rng).tolist()), epoch_order(4, rng, np.array([0.0, 0.0, 1.0, 0.0])).tolist()
    ([0, 1, 2, 3], [2, 2, 2, 2])
    """
    return rng.permutation(n) if weights is None else rng.choice(n, n, p=weights)


class _GradientReversal(torch.autograd.Function):
    """Identity forward; the gradient multiplied by ``-scale`` backward (Ganin & Lempitsky 2015)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.scale * grad, None


class SpeakerAdversary(nn.Module):
    """A small speaker classifier behind a gradient reversal layer: trained to tell the training speakers apart
    from the clip vectors, while the reversed gradient pushes the network towards vectors it cannot use.
    Used only during training; it is not part of the saved model."""

    def __init__(self, embedding_size: int, n_speakers: int, hidden: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(embedding_size, hidden), nn.ReLU(), nn.Linear(hidden, n_speakers))

    def forward(self, embedding: torch.Tensor, scale: float) -> torch.Tensor:
        return self.net(_GradientReversal.apply(embedding, scale))


def build_model(config: Config, n_classes: int) -> EmotionCNN | EmotionEnsemble:
    """A fresh EmotionCNN for ``config`` (an :class:`EmotionEnsemble` of them when ``config.model.members`` > 1),
    its weights in channels-last layout (faster on CPU). An encoder family (``model.arch`` "whisper" or "voice")
    has no network to build: its models are heads (:mod:`voxemo.nn.probe`)."""
    if config.model.arch != "cnn":
        raise ConfigError(f"model.arch={config.model.arch} is an encoder family: a linear head on a shipped encoder "
                          "(voxemo.nn.probe), not a network built here")

    def one(model: ModelConfig) -> EmotionCNN:
        cnn = EmotionCNN(config.features.n_mels, n_classes, model)
        return cnn.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs lack it

    m = config.model
    return one(m) if m.members == 1 else EmotionEnsemble([one(m.member(i)) for i in range(m.members)])


def train_model(
    specs: Sequence[np.ndarray],
    labels: np.ndarray,
    n_classes: int,
    config: Config,
    *,
    val_specs: Sequence[np.ndarray] | None = None,
    val_labels: np.ndarray | None = None,
    epochs: int | None = None,
    aug_specs: Sequence[Sequence[np.ndarray]] | None = None,
    weights: np.ndarray | None = None,
    speakers: Sequence[str] | None = None,
    threads: int = 1,
    progress: bool = True,
    desc: str = "train",
) -> TrainResult:
    """Train from scratch; with validation data, keep the weights of the epoch with the lowest validation loss
    and stop after ``config.train.patience`` epochs without improvement; both start in the second half of
    training, once the one-cycle learning rate anneals.

    Parameters
    ----------
    specs : sequence of np.ndarray, each (n_mels, n_frames_i)
        Log-mel spectrograms of the training clips (any lengths).
    labels : np.ndarray of int, shape (n,)
        Class indices in ``range(n_classes)``.
    epochs : int, optional
        Overrides ``config.train.epochs`` (used to retrain on all data for the epoch count found by validation).
    aug_specs : sequence of sequences of np.ndarray, optional
        Augmented copies of each training clip (:func:`voxemo.io.cache.extract_augmented`); each epoch every clip is
        drawn uniformly from its original and its copies. Normalisation is fitted on the originals only.
    weights : np.ndarray, shape (n,), optional
        Per-clip sampling weights (e.g. :func:`voxemo.experiment.multicorpus.corpus_weights`, so that every corpus
        contributes equally). Each epoch then draws ``n`` clips with replacement with these probabilities
        (seeded) instead of a permutation of all clips, and the output-bias priors are the weighted class shares.
        None (the default): every clip once per epoch.
    speakers : sequence of str, optional
        The speaker of each training clip; required when ``config.train.speaker_adversary`` > 0, unused otherwise.
    threads : int
        Torch intra-op threads (0 = torch's default, all cores). A run setting, not part of the recipe; the
        default 1 makes a run's numbers the same on any machine (with another thread count they differ in the
        last bits, and a long training drifts apart).

    With ``config.model.members`` > 1 each member is trained this way in turn, with seed ``train.seed + i`` and
    its own architecture (:meth:`~voxemo.core.config.ModelConfig.member`; member 0 is the single model of the same
    seed and member 0's options), and the result holds their :class:`EmotionEnsemble`; its
    history is the members' rows averaged epoch by epoch and its best epoch their rounded mean.
    """
    if config.model.arch != "cnn":
        raise ConfigError(f"model.arch={config.model.arch} is not trained by this loop: an encoder family's head is "
                          f"fitted by voxemo.nn.probe.fit_head (voxemo train --model {config.model.arch})")
    if config.model.members > 1:
        return _train_ensemble(specs, labels, n_classes, config, val_specs=val_specs, val_labels=val_labels,
                               epochs=epochs, aug_specs=aug_specs, weights=weights, speakers=speakers,
                               threads=threads, progress=progress, desc=desc)
    t = config.train
    set_threads(threads)
    torch.manual_seed(t.seed)
    rng = np.random.default_rng(t.seed)
    n_frames = segment_frames(config.audio, config.features)
    fill = pad_value(config.features)
    epochs = epochs or t.epochs
    labels = np.asarray(labels, dtype=np.int64)
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != (len(specs),) or not np.all(weights >= 0) or weights.sum() <= 0:
            raise ConfigError(f"weights must be {len(specs)} non-negative numbers with a positive sum")
        weights = weights / weights.sum()
    run = _setup(specs, labels, n_classes, config, weights, speakers, epochs, n_frames, fill)
    validate = val_specs is not None and val_labels is not None and len(val_specs) > 0
    val = (centre_segments(val_specs, n_frames, fill), np.asarray(val_labels)) if validate else None  # type: ignore[arg-type]
    bar = tqdm(range(1, epochs + 1), desc=desc, unit="epoch", disable=not progress, leave=False)
    try:
        return _fit(run, bar, val, lambda epoch: _train_epoch(run, specs, aug_specs, labels, weights, config, rng,
                                                              epoch, epochs, n_frames, fill), config)
    finally:
        bar.close()


def _fit(run: _Run, bar: Any, val: tuple[np.ndarray, np.ndarray] | None,
         train_epoch: Callable[[int], dict[str, float]], config: Config) -> TrainResult:
    """The epochs of :func:`train_model`: train, validate, keep the best weights of the second half, stop early."""
    model, epochs = run.model, len(bar)
    result = TrainResult(model=model)
    best_loss, best_state, since_best = math.inf, None, 0
    for epoch in bar:
        start = time.perf_counter()
        row = train_epoch(epoch)
        kept = model if run.ema is None else run.ema.module
        if val is not None:
            row |= _validation_row(kept, *val)
        row["seconds"] = time.perf_counter() - start
        result.history.append(row)
        # Under the one-cycle schedule validation loss swings widely while the learning rate is high, so
        # checkpoint selection and early stopping only start in the second, annealing half of training.
        if val is not None and epoch > epochs // 2:
            bar.set_postfix(val_loss=f"{row['val_loss']:.3f}", val_acc=f"{row['val_accuracy']:.3f}")
            if row["val_loss"] < best_loss - 1e-4:
                best_loss, since_best, result.best_epoch = row["val_loss"], 0, epoch
                best_state = {k: v.detach().clone() for k, v in kept.state_dict().items()}
            else:
                since_best += 1
                if since_best >= config.train.patience:
                    break
    if best_state is not None:
        model.load_state_dict(best_state)
    else:
        result.best_epoch = len(result.history)
        if run.ema is not None:
            model.load_state_dict(run.ema.module.state_dict())
    model.eval()
    return result


@dataclass
class _Run:
    """What one training updates: the network, the speaker adversary, the optimiser, its schedule, the weight
    average, and the speaker index of every clip (for the adversary)."""

    model: EmotionCNN
    adversary: SpeakerAdversary | None
    optimizer: torch.optim.Optimizer
    scheduler: Any
    ema: Any
    speaker_ids: np.ndarray | None
    steps_per_epoch: int


def _setup(specs: Sequence[np.ndarray], labels: np.ndarray, n_classes: int, config: Config,
           weights: np.ndarray | None, speakers: Sequence[str] | None, epochs: int, n_frames: int,
           fill: float) -> _Run:
    """A fresh network (normalisation fitted, output bias set) and everything that trains it."""
    t = config.train
    model = build_model(config, n_classes)
    if not isinstance(model, EmotionCNN):  # members > 1 was handled above
        raise ConfigError(f"model.members={config.model.members}: expected one CNN here")
    model.fit_normalizer(centre_segments(specs, n_frames, fill))
    if config.model.bias_init:
        counts = np.bincount(labels, weights=weights, minlength=n_classes)
        model.init_output_bias(counts / counts.sum())
    adversary, speaker_ids = None, None
    if t.speaker_adversary:
        if speakers is None or len(speakers) != len(specs):
            raise ConfigError("train.speaker_adversary needs the speaker of every training clip")
        names, inverse = np.unique(np.asarray(speakers, dtype=str), return_inverse=True)
        speaker_ids = inverse.astype(np.int64)
        adversary = SpeakerAdversary(model.embedding_size, len(names))
    params = list(model.parameters()) + (list(adversary.parameters()) if adversary is not None else [])
    optimizer = torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
    steps_per_epoch = math.ceil(len(specs) / t.batch_size)
    # OneCycleLR divides by its warm-up length, which is 0 for a run of a handful of steps: give it at least 10
    # (a tiny run then stops part-way up the schedule; real runs have hundreds of steps and are unaffected).
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=t.lr, total_steps=max(10, epochs * steps_per_epoch), pct_start=0.2
    )
    # an exponential moving average of the weights (and batch-norm statistics), validated and kept instead of them
    ema = (torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(t.ema),
                                               use_buffers=True) if t.ema else None)
    return _Run(model, adversary, optimizer, scheduler, ema, speaker_ids, steps_per_epoch)


def _train_epoch(run: _Run, specs: Sequence[np.ndarray], aug_specs: Sequence[Sequence[np.ndarray]] | None,
                 labels: np.ndarray, weights: np.ndarray | None, config: Config, rng: np.random.Generator,
                 epoch: int, epochs: int, n_frames: int, fill: float) -> dict[str, float]:
    """One epoch over every clip (an original or one of its copies, drawn per clip); its history row so far."""
    t, model, adversary = config.train, run.model, run.adversary
    model.train()
    if aug_specs:
        pick = [int(rng.integers(0, 1 + len(a))) for a in aug_specs]
        epoch_specs = [s if k == 0 else a[k - 1] for s, a, k in zip(specs, aug_specs, pick)]
    else:
        epoch_specs = list(specs)
    x_all = spec_augment(random_segments(epoch_specs, n_frames, fill, rng), config, rng, fill)
    order = epoch_order(len(specs), rng, weights)
    total = speaker_total = 0.0
    ce = nn.functional.cross_entropy
    smooth = t.label_smoothing
    for b in range(run.steps_per_epoch):
        idx = order[b * t.batch_size : (b + 1) * t.batch_size]
        x = torch.from_numpy(x_all[idx])
        y = torch.from_numpy(labels[idx])
        lam = float(rng.beta(t.mixup_alpha, t.mixup_alpha)) if t.mixup_alpha > 0 else 1.0
        perm = torch.from_numpy(rng.permutation(len(idx)))
        embedding = model.embed(lam * x + (1 - lam) * x[perm])
        logits = model.head(embedding)
        loss = lam * ce(logits, y, label_smoothing=smooth) + (1 - lam) * ce(logits, y[perm], label_smoothing=smooth)
        total += float(loss.detach()) * len(idx)
        if adversary is not None:
            # DANN's ramp: the reversed gradient grows from 0 to its full weight over training
            done = ((epoch - 1) * run.steps_per_epoch + b) / (epochs * run.steps_per_epoch)
            s_logits = adversary(embedding, t.speaker_adversary * (2 / (1 + math.exp(-10 * done)) - 1))
            spk = torch.from_numpy(run.speaker_ids[idx])  # type: ignore[index]
            speaker_loss = lam * ce(s_logits, spk) + (1 - lam) * ce(s_logits, spk[perm])
            speaker_total += float(speaker_loss.detach()) * len(idx)
            loss = loss + speaker_loss
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
        run.scheduler.step()
        if run.ema is not None:
            run.ema.update_parameters(model)
    row = {"epoch": epoch, "train_loss": total / len(specs)}
    if adversary is not None:
        row["speaker_loss"] = speaker_total / len(specs)
    return row


def _validation_row(model: nn.Module, val_x: np.ndarray, val_labels: np.ndarray) -> dict[str, float]:
    """Validation loss, accuracy and UAR of ``model`` on the centred validation segments."""
    probs = predict_segments(model, val_x)  # type: ignore[arg-type]
    pred = probs.argmax(1)
    return {"val_loss": float(-np.mean(np.log(np.clip(probs[np.arange(len(val_labels)), val_labels], 1e-9, None)))),
            "val_accuracy": float(np.mean(pred == val_labels)),
            "val_uar": float(np.mean([np.mean(pred[val_labels == c] == c) for c in np.unique(val_labels)]))}


def _train_ensemble(specs: Sequence[np.ndarray], labels: np.ndarray, n_classes: int, config: Config,
                    **kwargs: Any) -> TrainResult:
    desc = kwargs.pop("desc")
    results = []
    for i in range(config.model.members):
        member = config.replace(model=config.model.member(i),
                                train=config.train.replace(seed=config.train.seed + i))
        results.append(train_model(specs, labels, n_classes, member, desc=f"{desc} {i + 1}/{config.model.members}",
                                   **kwargs))
    rows = min(len(r.history) for r in results)
    history = [{k: float(np.mean([r.history[e][k] for r in results])) for k in results[0].history[e]}
               for e in range(rows)]
    best = int(round(np.mean([r.best_epoch for r in results])))
    members = [r.model for r in results if isinstance(r.model, EmotionCNN)]  # each member is one CNN
    return TrainResult(model=EmotionEnsemble(members).eval(), history=history, best_epoch=best)


@torch.no_grad()
def predict_segments(model: EmotionCNN | EmotionEnsemble, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Softmax probabilities for fixed-length segments (n, n_mels, n_frames) -> (n, n_classes)."""
    model.eval()
    out = [torch.softmax(model(torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size]))), dim=1).numpy()
           for i in range(0, len(x), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, model.n_classes), np.float32)


def predict_specs(model: EmotionCNN | EmotionEnsemble, specs: Sequence[np.ndarray], config: Config) -> np.ndarray:
    """Class probabilities per clip, averaging over windows that cover each whole spectrogram.

    Returns
    -------
    np.ndarray, shape (n_clips, n_classes)
    """
    return average_windows(specs, config, lambda x: predict_segments(model, x), model.n_classes)
