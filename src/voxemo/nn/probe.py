"""The encoder families: pooled features of a frozen encoder -> standardisation -> one linear layer.

A model of an encoder family (:data:`FAMILIES`: ``model.arch="whisper"`` or ``"voice"``) is a frozen encoder shared
by every model of the family (:mod:`voxemo.inference.encoders`, one ONNX file each) and a :class:`ProbeHead`: the
standardisation moments (``mean``, ``std``) and a multinomial logistic regression (``weight``, ``bias``) over the
window features. All of it is NumPy and SciPy, so training the head, adapting it and predicting need no torch. A
new family is an encoder file, its analysis and an entry in :data:`FAMILIES`; training, adaptation and every
prediction path are this module's and :class:`voxemo.inference.probe_backend.ProbeClassifier`'s.

- **Training** (:func:`fit_head`) minimises the class- and corpus-balanced cross-entropy plus an L2 penalty of
  inverse strength ``c`` (scikit-learn's convention) with L-BFGS. Several corpora are the normal case: the windows
  are standardised with one set of moments (``norm="pooled"``, the default; ``"corpus"`` gives each corpus its
  own, ``"speaker"`` each speaker), each corpus weighs the same in the loss whatever its size, and a clip's softmax
  runs only over the classes its corpus has, so Emo-DB's clips never teach "not calm" (a class Emo-DB lacks).
- **Unsupervised adaptation** (:meth:`ProbeHead.adapted`) moves the moments towards a target's (mixture moments,
  the target weighing ``weight``).
- **Few-shot** (:meth:`ProbeHead.tuned`) refits the linear layer on a few labelled target windows with an L2 pull
  to the trained weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

import numpy as np

from voxemo.core.config import Config
from voxemo.core.errors import ConfigError, ModelError

#: the Whisper family's analysis: Whisper's own log-mel (16 kHz, 25 ms windows every 10 ms, 80 Slaney mel bands to
#: 8 kHz) and, since the encoder takes any length, clips up to 6 s as one window of their real length
WHISPER_ANALYSIS: dict[str, dict[str, Any]] = {
    "audio": {"sample_rate": 16000, "duration": 6.0, "pad_short": False},
    "features": {"n_fft": 400, "hop_length": 160, "n_mels": 80, "fmin": 0.0, "fmax": None, "top_db": 80.0},
}
#: the voice family's analysis: the speaker encoder's own (16 kHz, 25 ms windows every 10 ms, 40 mel bands to 8 kHz)
#: and 1.6-s windows (its training partials)
VOICE_ANALYSIS: dict[str, dict[str, Any]] = {
    "audio": {"sample_rate": 16000, "duration": 1.6},
    "features": {"n_fft": 400, "hop_length": 160, "n_mels": 40, "fmin": 0.0, "fmax": None, "top_db": 80.0},
}
#: inverse L2 strength of the Whisper head (scikit-learn's C), chosen on the development protocol (docs/results.md)
HEAD_C = 0.05
#: how the training windows are standardised: one set of moments for all (per corpus and per speaker measured worse
#: on the development protocol, docs/results.md)
HEAD_NORM = "pooled"
NORMS = ("pooled", "corpus", "speaker")
#: few-shot: inverse strength of the pull to the trained weights (per labelled window), chosen on the development
#: protocol
TUNE_C = 0.05
HEAD_FILE = "head.npz"


@dataclass(frozen=True)
class Family:
    """An encoder family: its arch name, its shared encoder (a name in :data:`voxemo.inference.encoders.ENCODERS`),
    the analysis its encoder reads (the config's audio and feature sections) and its head's inverse L2 strength."""

    arch: str
    encoder: str
    analysis: dict[str, dict[str, Any]]
    c: float
    about: str

    def config(self, **model: object) -> Config:
        """A config with this family's analysis and arch (``model``: more model fields)."""
        return Config.from_dict({**self.analysis, "model": {"arch": self.arch, **model}})


#: the encoder families by arch; ``voxemo train --model ARCH`` trains each
FAMILIES = {
    "whisper": Family("whisper", "whisper-base", WHISPER_ANALYSIS, HEAD_C,
                      "OpenAI Whisper base's encoder (blocks 1-4, int8), frozen, and a linear head"),
    "voice": Family("voice", "resemblyzer-voice", VOICE_ANALYSIS, 0.01,
                    "Resemblyzer's speaker encoder, frozen, and a linear head"),
}


def family(arch: str) -> Family:
    """The encoder family of ``arch``.

    Raises
    ------
    ConfigError
        ``arch`` is not an encoder family (the CNN is trained, not probed).
    """
    if arch not in FAMILIES:
        raise ConfigError(f"model.arch={arch!r} is not an encoder family ({', '.join(FAMILIES)})")
    return FAMILIES[arch]


@dataclass(frozen=True, eq=False)
class ProbeHead:
    """Standardisation moments and a linear layer: window features (n, d) -> logits (n, n_classes)."""

    mean: np.ndarray
    std: np.ndarray
    weight: np.ndarray  # (n_classes, d)
    bias: np.ndarray  # (n_classes,)

    def __post_init__(self) -> None:
        d = self.mean.shape[0]
        if self.std.shape != (d,) or self.weight.ndim != 2 or self.weight.shape[1] != d \
                or self.bias.shape != (self.weight.shape[0],):
            raise ModelError(f"inconsistent head shapes: mean {self.mean.shape}, std {self.std.shape}, "
                             f"weight {self.weight.shape}, bias {self.bias.shape}")
        if not all(np.all(np.isfinite(a)) for a in (self.mean, self.std, self.weight, self.bias)) \
                or np.any(self.std <= 0):
            raise ModelError("the head holds non-finite values or a non-positive standard deviation")

    @property
    def n_features(self) -> int:
        return int(self.mean.shape[0])

    @property
    def n_classes(self) -> int:
        return int(self.weight.shape[0])

    def logits(self, features: np.ndarray) -> np.ndarray:
        z = (np.asarray(features, np.float64) - self.mean) / self.std
        return (z @ self.weight.T + self.bias).astype(np.float32)

    def adapted(self, target: np.ndarray, weight: float) -> ProbeHead:
        """The head with its moments moved towards those of the target windows' features ``target`` (n, d):
        mixture moments with the target weighing ``weight`` in (0, 1]."""
        if not 0.0 < weight <= 1.0:
            raise ValueError(f"weight={weight!r} must be in (0, 1]")
        t = np.asarray(target, np.float64)
        if not len(t) or not np.all(np.isfinite(t)):
            raise ValueError("no target windows (or non-finite features) to adapt on")
        mt, vt = t.mean(axis=0), t.var(axis=0)
        mean, var = mix_moments([(self.mean, self.std**2), (mt, vt)], [1 - weight, weight])
        return replace(self, mean=mean, std=np.sqrt(np.maximum(var, 1e-12)))

    def shift(self, other: ProbeHead) -> tuple[float, float]:
        """How far ``other``'s moments lie from this head's: mean |Δmean| / std and mean std ratio."""
        return (float(np.mean(np.abs(other.mean - self.mean) / self.std)), float(np.mean(other.std / self.std)))

    def tuned(self, features: np.ndarray, labels: np.ndarray, *, c: float = TUNE_C) -> ProbeHead:
        """The linear layer refitted on labelled target windows (standardised with this head's moments), pulled
        towards the trained weights with inverse strength ``c`` per window."""
        z = (np.asarray(features, np.float64) - self.mean) / self.std
        w, b = _fit_softmax(z, np.asarray(labels), self.n_classes, np.ones(len(z)), None, c=c,
                            prior=(self.weight, self.bias))
        return replace(self, weight=w, bias=b)

    def save(self, path: str | Path | IO[bytes]) -> None:
        np.savez(path, mean=self.mean, std=self.std, weight=self.weight, bias=self.bias)

    @classmethod
    def load(cls, path: str | Path) -> ProbeHead:
        try:
            with np.load(path, allow_pickle=False) as f:
                return cls(*(np.asarray(f[k], np.float64) for k in ("mean", "std", "weight", "bias")))
        except (OSError, KeyError, ValueError) as exc:
            raise ModelError(f"{path}: unreadable head ({exc})") from None


def mix_moments(parts: Sequence[tuple[np.ndarray, np.ndarray]], weights: Sequence[float]
                ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of a mixture of distributions given by (mean, variance) pairs with ``weights``."""
    w = np.asarray(weights, np.float64) / np.sum(weights)
    mean = sum(wi * m for wi, (m, _) in zip(w, parts))
    var = sum(wi * (v + (m - mean) ** 2) for wi, (m, v) in zip(w, parts))
    return np.asarray(mean), np.asarray(var)


def standardise_groups(features: np.ndarray, groups: Sequence[str], corpus_of: Sequence[str]
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Standardise each group's rows (a corpus', a speaker's) with that group's own moments.

    Returns the standardised rows and the moments a model of these data keeps for audio of unknown origin: the
    mixture of the groups' moments, each corpus weighing the same and its groups equally within it.
    """
    x = np.asarray(features, np.float64)
    out = np.empty_like(x)
    g = np.asarray(groups)
    parts, weights = [], []
    corpora = sorted(set(corpus_of))
    for name in sorted(set(g.tolist())):
        rows = g == name
        m, v = x[rows].mean(axis=0), x[rows].var(axis=0)
        out[rows] = (x[rows] - m) / np.sqrt(v + 1e-12)
        corpus = np.asarray(corpus_of)[rows][0]
        n_in_corpus = len({gg for gg, cc in zip(groups, corpus_of) if cc == corpus})
        parts.append((m, v))
        weights.append(1.0 / (len(corpora) * n_in_corpus))
    mean, var = mix_moments(parts, weights)
    return out, mean, np.sqrt(np.maximum(var, 1e-12))


def fit_head(features: np.ndarray, labels: np.ndarray, n_classes: int, *, corpus: Sequence[str],
             speaker: Sequence[str], clip: Sequence[int] | np.ndarray, norm: str = HEAD_NORM,
             c: float = HEAD_C) -> ProbeHead:
    """Fit a :class:`ProbeHead` to labelled training windows (see the module docstring).

    Parameters
    ----------
    features : (n, d) window features; labels : (n,) class indices.
    corpus, speaker, clip : per window, its corpus, speaker and clip (a clip's windows share its weight).
    norm : "corpus", "speaker" or "pooled".
    """
    if norm not in NORMS:
        raise ModelError(f"norm={norm!r} is not one of {', '.join(NORMS)}")
    y = np.asarray(labels)
    if len(y) != len(features) or not len(y):
        raise ModelError(f"{len(features)} windows and {len(y)} labels: need as many, and at least one")
    corpus_a = np.asarray(corpus)
    groups = {"pooled": ["all"] * len(y), "corpus": list(corpus_a),
              "speaker": [f"{c}/{s}" for c, s in zip(corpus, speaker)]}[norm]
    z, mean, std = standardise_groups(features, groups, ["all"] * len(y) if norm == "pooled" else list(corpus_a))
    # weights: every corpus the same in total, within it every class the same, within that every clip the same
    clip_a = np.asarray(clip)
    weight = np.zeros(len(y))
    names = sorted(set(corpus_a.tolist()))
    mask = np.zeros((len(y), n_classes), bool)
    for name in names:
        rows = corpus_a == name
        classes = np.unique(y[rows])
        mask[np.ix_(rows, classes)] = True
        for k in classes:
            sel = rows & (y == k)
            clips, counts = np.unique(clip_a[sel], return_counts=True)
            per_clip = dict(zip(clips.tolist(), counts.tolist()))
            weight[sel] = [1.0 / (len(names) * len(classes) * len(clips) * per_clip[i]) for i in clip_a[sel]]
    weight *= len(y) / weight.sum()
    w, b = _fit_softmax(z, y, n_classes, weight, mask, c=c)
    return ProbeHead(mean, std, w, b)


def _fit_softmax(z: np.ndarray, y: np.ndarray, n_classes: int, weight: np.ndarray, mask: np.ndarray | None, *,
                 c: float, prior: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Weighted multinomial logistic regression by L-BFGS: minimise ``sum(weight * CE) + |W - W0|^2 / (2 c)``
    (``W0`` the prior's weights, else 0; the bias is not penalised), each row's softmax over its ``mask``."""
    from scipy.optimize import minimize

    n, d = z.shape
    onehot = np.zeros((n, n_classes))
    onehot[np.arange(n), y] = 1.0
    log_mask = np.zeros((n, n_classes)) if mask is None else np.where(mask, 0.0, -np.inf)
    w0, b0 = prior if prior is not None else (np.zeros((n_classes, d)), np.zeros(n_classes))

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[: n_classes * d].reshape(n_classes, d), theta[n_classes * d :]
        logits = z @ w.T + b + log_mask
        logits -= logits.max(axis=1, keepdims=True)
        logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        p = np.exp(logp)
        loss = -float(np.sum(weight * np.where(onehot > 0, logp, 0.0).sum(axis=1)))
        diff = w - w0
        loss += float(np.sum(diff**2)) / (2 * c)
        g = (p - onehot) * weight[:, None]
        grad_w = g.T @ z + diff / c
        return loss, np.concatenate([grad_w.ravel(), g.sum(axis=0)])

    start = np.concatenate([w0.ravel(), b0])
    res = minimize(objective, start, jac=True, method="L-BFGS-B", options={"maxiter": 2000})
    theta = res.x
    return theta[: n_classes * d].reshape(n_classes, d), theta[n_classes * d :]
