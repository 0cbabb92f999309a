"""Configuration as frozen dataclasses, validated on construction and saved with every model and report.

The CLI only overrides fields; a model directory stores ``config.json`` so that prediction rebuilds exactly the
preprocessing the model was trained with.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .errors import ConfigError

T = TypeVar("T", bound="_Config")


class _Config:
    """Mixin giving dataclasses ``to_dict`` / ``from_dict`` and ``replace``."""

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)  # type: ignore[call-overload]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown field(s) {unknown}; expected some of {sorted(known)}")
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**kwargs)

    def replace(self: T, **changes: Any) -> T:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


def _positive(owner: str, name: str, value: float) -> None:
    if not value > 0:
        raise ConfigError(f"{owner}.{name}={value!r} must be positive")


@dataclass(frozen=True)
class AudioConfig(_Config):
    """How a recording becomes the signal the features are computed from.

    Attributes
    ----------
    sample_rate : int
        Target rate in Hz; every input is downmixed to mono and resampled to it with soxr.
    top_db : float
        Silence trimming threshold in dB below the clip's peak frame (librosa.effects.trim). ``0`` disables it.
    duration : float
        Length in seconds of the fixed-size segment the model sees; shorter speech is padded, longer speech
        is covered by several windows whose predictions are averaged.
    min_duration : float
        Shortest usable signal in seconds, after trimming; shorter input is rejected with an error.
    max_duration : float
        Longest input in seconds accepted by ``load_audio`` (protects memory); longer input is rejected.
    """

    sample_rate: int = 22050
    top_db: float = 35.0
    duration: float = 3.0
    min_duration: float = 0.25
    max_duration: float = 600.0

    def __post_init__(self) -> None:
        if not isinstance(self.sample_rate, int) or not 8000 <= self.sample_rate <= 48000:
            raise ConfigError(f"AudioConfig.sample_rate={self.sample_rate!r} must be an integer in 8000..48000 Hz")
        if self.top_db < 0:
            raise ConfigError(f"AudioConfig.top_db={self.top_db!r} must be >= 0 (0 disables trimming)")
        for name in ("duration", "min_duration", "max_duration"):
            _positive("AudioConfig", name, getattr(self, name))
        if self.min_duration > self.duration or self.duration > self.max_duration:
            raise ConfigError("AudioConfig needs min_duration <= duration <= max_duration")


@dataclass(frozen=True)
class FeatureConfig(_Config):
    """Log-mel spectrogram parameters (librosa).

    ``hop_length`` and ``n_fft`` are in samples at ``AudioConfig.sample_rate``; ``fmin``/``fmax`` in Hz
    (``fmax=None`` means half the sample rate). Values are in dB relative to the clip's loudest bin, clipped
    ``top_db`` below it, so a gain change does not change the features. ``utterance_norm`` subtracts each
    clip's mean per mel bin (removing the speaker's and channel's average spectrum), and pads with 0.
    """

    n_fft: int = 1024
    hop_length: int = 512
    n_mels: int = 64
    fmin: float = 40.0
    fmax: float | None = None
    top_db: float = 80.0
    utterance_norm: bool = False

    def __post_init__(self) -> None:
        for name in ("n_fft", "hop_length", "n_mels"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"FeatureConfig.{name}={value!r} must be a positive integer")
        if self.hop_length > self.n_fft:
            raise ConfigError(f"FeatureConfig.hop_length={self.hop_length} must not exceed n_fft={self.n_fft}")
        if self.fmin < 0 or (self.fmax is not None and self.fmax <= self.fmin):
            raise ConfigError(f"FeatureConfig needs 0 <= fmin < fmax, got fmin={self.fmin}, fmax={self.fmax}")
        _positive("FeatureConfig", "top_db", self.top_db)


@dataclass(frozen=True)
class ModelConfig(_Config):
    """CNN architecture: conv blocks of ``channels`` (each halves time and frequency), then pooling and a
    linear classifier. ``bias_init`` sets the output bias to the log class priors of the training set."""

    channels: tuple[int, ...] = (16, 32, 64, 128)
    dropout: float = 0.3
    bias_init: bool = True

    def __post_init__(self) -> None:
        if not self.channels or any(int(c) <= 0 for c in self.channels):
            raise ConfigError(f"ModelConfig.channels={self.channels!r} must be a non-empty tuple of positive ints")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"ModelConfig.dropout={self.dropout!r} must be in [0, 1)")


@dataclass(frozen=True)
class TrainConfig(_Config):
    """Optimisation and augmentation settings. ``seed`` makes a run reproducible on the same machine.

    ``freq_shift`` shifts each training segment up or down by up to that many mel bins (a cheap stand-in for
    pitch and formant differences between speakers); masks are SpecAugment's, widths in bins and frames.
    """

    epochs: int = 60
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-3
    patience: int = 8
    val_actors: int = 4
    mixup_alpha: float = 0.0
    freq_masks: int = 1
    freq_mask_width: int = 8
    time_masks: int = 1
    time_mask_width: int = 16
    freq_shift: int = 3
    seed: int = 0
    threads: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "patience"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"TrainConfig.{name}={value!r} must be a positive integer")
        _positive("TrainConfig", "lr", self.lr)
        if self.weight_decay < 0 or self.mixup_alpha < 0:
            raise ConfigError("TrainConfig.weight_decay and mixup_alpha must be >= 0")
        if self.val_actors < 1:
            raise ConfigError(f"TrainConfig.val_actors={self.val_actors!r} must be >= 1")


@dataclass(frozen=True)
class Config(_Config):
    """Everything a model needs to be rebuilt: stored as ``config.json`` in every model directory."""

    audio: AudioConfig = field(default_factory=AudioConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return {
            "audio": self.audio.to_dict(),
            "features": self.features.to_dict(),
            "model": self.model.to_dict(),
            "train": self.train.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Config:
        parts = {"audio": AudioConfig, "features": FeatureConfig, "model": ModelConfig, "train": TrainConfig}
        unknown = sorted(set(data) - set(parts))
        if unknown:
            raise ConfigError(f"Config: unknown section(s) {unknown}; expected some of {sorted(parts)}")
        return cls(**{k: parts[k].from_dict(v) for k, v in data.items()})
