"""Configuration as frozen dataclasses, validated on construction and saved with every model and report.

The CLI only overrides fields; a model directory stores ``config.json`` so that prediction rebuilds exactly the
preprocessing the model was trained with.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from voxemo.core.errors import ConfigError

T = TypeVar("T", bound="_Config")


class _Config:
    """Mixin giving dataclasses ``to_dict`` / ``from_dict`` and ``replace``."""

    #: fields of older saved configs: old name -> its new name, or None for a field no longer in the recipe
    #: (``from_dict`` renames or drops them, so models and reports saved before still load)
    _LEGACY: ClassVar[dict[str, str | None]] = {}

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)  # type: ignore[call-overload]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        data = {cls._LEGACY.get(k) or k: v for k, v in data.items() if k not in cls._LEGACY or cls._LEGACY[k]}
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
    pad_short : bool
        Pad speech shorter than ``duration`` to it (the CNN, whose input has a fixed size); ``False`` gives it as
        one window of its real length (models whose network takes any length, such as the Whisper family).
    """

    sample_rate: int = 22050
    top_db: float = 35.0
    duration: float = 3.0
    min_duration: float = 0.25
    max_duration: float = 600.0
    pad_short: bool = True

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


#: the model families: the trained CNN, the frozen voice encoder, the frozen Whisper encoder
ARCHS = ("cnn", "voice", "whisper")


@dataclass(frozen=True)
class ModelConfig(_Config):
    """CNN architecture: conv blocks of ``channels`` (each halves time and frequency), then pooling and a
    linear classifier. ``bias_init`` sets the output bias to the log class priors of the training set.
    ``pooling`` over time: ``"meanmax"`` concatenates the mean and the max, ``"attention"`` a learned
    softmax-weighted mean and the max. ``pool_first`` orders each block conv, max-pool, batch norm, ReLU instead of
    conv, batch norm, ReLU, max-pool (faster on a CPU). ``freq_pooling`` per time step: ``"mean"`` averages the
    channels over the remaining mel bins, ``"flatten"`` keeps every (channel, bin) value, so where in frequency a
    pattern lies still counts. ``recurrent`` > 0 runs a bidirectional GRU of that many units per direction over the
    time steps before the pooling over time (a CRNN). ``residual`` adds to every block a second 3x3 convolution at
    the block's output resolution with an identity shortcut around it (a small residual network; about 1.3x a
    training step).

    Two domain-generalisation options act after each of the first two blocks (both off by default):
    ``freq_norm`` in (0, 1] mixes in relaxed instance frequency-wise normalisation (RFN: each clip's feature maps
    normalised per mel band, weighted ``freq_norm``, plus their layer normalisation, weighted ``1 - freq_norm``; at
    prediction too), so a corpus' spectral colour counts less; ``mixstyle`` in (0, 1] is the probability per training
    batch of MixStyle (each clip's channel means and deviations mixed with another clip's; nothing at prediction).

    ``members`` > 1 trains that many such CNNs, member i with seed ``train.seed + i``, and averages their
    probabilities (:class:`~voxemo.nn.model.EmotionEnsemble`): one model file, one ONNX graph, ``members`` times the
    training and network time. ``member_options``, one dict of this section's fields per member (e.g.
    ``[{}, {"freq_pooling": "flatten"}, {"recurrent": 64}]``), makes the members differ in architecture too;
    :meth:`member` gives member i's config.

    ``arch="whisper"`` and ``arch="voice"`` are the encoder families (:data:`voxemo.nn.probe.FAMILIES`): a frozen
    shared encoder (Whisper base's; a pretrained speaker encoder's) with a linear head, and the family's analysis as
    the audio and feature sections; the CNN fields then do not apply."""

    arch: str = "cnn"
    channels: tuple[int, ...] = (16, 32, 64, 128)
    dropout: float = 0.3
    bias_init: bool = True
    pooling: str = "meanmax"
    pool_first: bool = True
    freq_pooling: str = "mean"
    recurrent: int = 0
    residual: bool = False
    freq_norm: float = 0.0
    mixstyle: float = 0.0
    members: int = 1
    member_options: tuple[dict[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ConfigError(f"ModelConfig.arch={self.arch!r} must be one of {', '.join(ARCHS)}")
        if not self.channels or any(int(c) <= 0 for c in self.channels):
            raise ConfigError(f"ModelConfig.channels={self.channels!r} must be a non-empty tuple of positive ints")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"ModelConfig.dropout={self.dropout!r} must be in [0, 1)")
        if self.pooling not in ("meanmax", "attention"):
            raise ConfigError(f"ModelConfig.pooling={self.pooling!r} must be 'meanmax' or 'attention'")
        if self.freq_pooling not in ("mean", "flatten"):
            raise ConfigError(f"ModelConfig.freq_pooling={self.freq_pooling!r} must be 'mean' or 'flatten'")
        if not isinstance(self.recurrent, int) or self.recurrent < 0:
            raise ConfigError(f"ModelConfig.recurrent={self.recurrent!r} must be a non-negative integer")
        if not isinstance(self.members, int) or self.members < 1:
            raise ConfigError(f"ModelConfig.members={self.members!r} must be a positive integer")
        if not 0 <= self.freq_norm <= 1 or not 0 <= self.mixstyle <= 1:
            raise ConfigError(f"ModelConfig.freq_norm={self.freq_norm!r} and mixstyle={self.mixstyle!r} must be in "
                              "[0, 1]")
        if self.member_options:
            if len(self.member_options) != self.members:
                raise ConfigError(f"ModelConfig.member_options has {len(self.member_options)} entries for "
                                  f"members={self.members}; give one dict per member")
            for i in range(self.members):
                self.member(i)  # validates each member's fields

    def member(self, i: int) -> ModelConfig:
        """The config of ensemble member ``i``: this one with ``member_options[i]`` applied, as a single model.

        >>> ModelConfig(members=2, member_options=({}, {"recurrent": 32})).member(1).recurrent
        32
        """
        opts = self.member_options[i] if self.member_options else {}
        if not isinstance(opts, dict) or {"members", "member_options"} & set(opts):
            raise ConfigError(f"ModelConfig.member_options[{i}]={opts!r} must be a dict of other ModelConfig fields")
        return ModelConfig.from_dict({**self.to_dict(), **opts, "members": 1, "member_options": []})


@dataclass(frozen=True)
class TrainConfig(_Config):
    """Optimisation and augmentation settings. ``seed`` makes a run reproducible on the same machine.

    ``freq_shift`` shifts each training segment up or down by up to that many mel bins (a cheap stand-in for
    pitch and formant differences between speakers); masks are SpecAugment's, widths in bins and frames.
    ``label_smoothing`` moves that share of each target's probability onto the other classes (0 = off; 0.1
    scored 0.679 vs 0.670 on ``actor-6fold``, mean of seeds 0-2, and 0.2 scored lower).
    ``speaker_adversary`` > 0 trains a speaker classifier on the clip vectors through a gradient reversal layer,
    with that weight (ramped up from 0 over training), so the network is pushed to features that do not tell the
    training speakers apart (domain-adversarial training; needs the speakers, 0 = off).
    """

    epochs: int = 60
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-3
    patience: int = 8
    val_speakers: int = 4
    mixup_alpha: float = 0.0
    label_smoothing: float = 0.1
    ema: float = 0.0
    speaker_adversary: float = 0.0
    freq_masks: int = 1
    freq_mask_width: int = 8
    time_masks: int = 1
    time_mask_width: int = 16
    freq_shift: int = 3
    seed: int = 0

    # before 0.2: validation speakers were ``val_actors``; torch ``threads`` (a run setting, no longer saved)
    _LEGACY: ClassVar[dict[str, str | None]] = {"val_actors": "val_speakers", "threads": None}

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "patience"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"TrainConfig.{name}={value!r} must be a positive integer")
        _positive("TrainConfig", "lr", self.lr)
        if self.weight_decay < 0 or self.mixup_alpha < 0:
            raise ConfigError("TrainConfig.weight_decay and mixup_alpha must be >= 0")
        if self.val_speakers < 1:
            raise ConfigError(f"TrainConfig.val_speakers={self.val_speakers!r} must be >= 1")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"TrainConfig.label_smoothing={self.label_smoothing!r} must be in [0, 1)")
        if self.speaker_adversary < 0:
            raise ConfigError(f"TrainConfig.speaker_adversary={self.speaker_adversary!r} must be >= 0 (0 = off)")
        if not 0 <= self.ema < 1:
            raise ConfigError(f"TrainConfig.ema={self.ema!r} must be in [0, 1) (0 = off)")


@dataclass(frozen=True)
class AugmentConfig(_Config):
    """Waveform augmentation of training clips (never of validation or test clips).

    ``copies`` augmented versions of every training clip are made once, cached with the features, and each epoch
    every clip is drawn uniformly from its original and its copies; ``copies=0`` turns waveform augmentation off.
    Each copy applies every family below with probability ``p``: a pitch shift of up to ``pitch_semitones`` either
    way, a time stretch by a rate in ``1 ± stretch``, a gain in ``± gain_db`` and Gaussian noise at an SNR drawn
    from ``noise_snr_db`` (min, max). Pitch shift and time stretch are audiomentations' (signalsmith-stretch).
    ``eq_db`` > 0 adds a family: audiomentations' 7-band parametric EQ with each band cut or boosted by up to that
    many dB (another microphone, room or channel); off by default. ``telephone`` > 0 passes that share of the
    copies through a simulated narrowband telephone line (:func:`voxemo.dsp.channel.telephone`: 8 kHz,
    300-3400 Hz, mu-law) after the other families; off by default. An encoder family (a frozen encoder and a linear
    head) uses no random copies: ``telephone`` > 0 trains it on one telephone copy of every clip besides the clip.
    A family with a zero range (``noise_snr_db=None``) is off. Gain alone cannot change the features (they are
    relative to the clip's loudest bin); it matters only together with noise. SpecAugment masks are in
    :class:`TrainConfig`. A copy's random draws depend only on ``seed``, the file's content and the copy's index.
    """

    copies: int = 4
    p: float = 0.5
    pitch_semitones: float = 2.0
    stretch: float = 0.1
    gain_db: float = 6.0
    noise_snr_db: tuple[float, float] | None = (15.0, 40.0)
    eq_db: float = 0.0
    telephone: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.telephone <= 1:
            raise ConfigError(f"AugmentConfig.telephone={self.telephone!r} must be in [0, 1]")
        if not isinstance(self.copies, int) or self.copies < 0:
            raise ConfigError(f"AugmentConfig.copies={self.copies!r} must be a non-negative integer")
        if not 0 <= self.p <= 1:
            raise ConfigError(f"AugmentConfig.p={self.p!r} must be in [0, 1]")
        if self.pitch_semitones < 0 or self.gain_db < 0 or self.eq_db < 0 or not 0 <= self.stretch < 0.5:
            raise ConfigError("AugmentConfig needs pitch_semitones >= 0, gain_db >= 0, eq_db >= 0 and "
                              "0 <= stretch < 0.5")
        snr = self.noise_snr_db
        if snr is not None and (len(snr) != 2 or snr[0] > snr[1]):
            raise ConfigError(f"AugmentConfig.noise_snr_db={snr!r} must be (min, max) with min <= max, or None (off)")


@dataclass(frozen=True)
class Config(_Config):
    """Everything a model needs to be rebuilt: stored as ``config.json`` in every model directory."""

    audio: AudioConfig = field(default_factory=AudioConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def to_dict(self) -> dict[str, Any]:
        return {
            "audio": self.audio.to_dict(),
            "features": self.features.to_dict(),
            "model": self.model.to_dict(),
            "train": self.train.to_dict(),
            "augment": self.augment.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Config:
        parts: dict[str, type[_Config]] = {"audio": AudioConfig, "features": FeatureConfig, "model": ModelConfig,
                                           "train": TrainConfig, "augment": AugmentConfig}
        unknown = sorted(set(data) - set(parts))
        if unknown:
            raise ConfigError(f"Config: unknown section(s) {unknown}; expected some of {sorted(parts)}")
        return cls(**{k: parts[k].from_dict(v) for k, v in data.items()})  # type: ignore[arg-type]


def apply_overrides(config: Config, items: list[str] | tuple[str, ...]) -> Config:
    """``config`` with ``SECTION.FIELD=VALUE`` overrides applied (values are JSON, else plain strings).

    >>> apply_overrides(Config(), ["augment.copies=2", "model.channels=[8, 16]"]).model.channels
    (8, 16)
    >>> apply_overrides(Config(), ["model.width=3"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    voxemo.core.errors.ConfigError: ModelConfig: unknown field(s) ['width']; expected some of ['arch', ...]
    """

    data = config.to_dict()
    for item in items:
        key, sep, raw = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or section not in data:
            raise ConfigError(f"bad override {item!r}: expected SECTION.FIELD=VALUE with SECTION one of {sorted(data)}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        data[section][name] = value
    try:
        return Config.from_dict(data)
    except TypeError as exc:
        raise ConfigError(f"bad override in {list(items)}: {exc}") from None


#: adaptation without labels: seconds of speech below which a set is refused, and at which the target's statistics
#: and the training statistics weigh equally (docs/results.md, "Adaptation"; :mod:`voxemo.inference.adaptset`)
ADAPT_MIN_SECONDS = 30.0
ADAPT_PRIOR_SECONDS = 300.0

