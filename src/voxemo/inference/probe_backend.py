"""The encoder families' backend: :class:`ProbeClassifier` runs a shared frozen encoder (ONNX Runtime,
:mod:`voxemo.inference.encoders`) and its model's linear head (:class:`voxemo.nn.probe.ProbeHead`, NumPy).

A model folder of an encoder family (``model.arch`` "whisper" or "voice", :data:`voxemo.nn.probe.FAMILIES`) holds
``config.json``, ``labels.json``, ``head.npz``, ``encoder.json`` (which shipped encoder, and its SHA-256: a
reference, never a copy), optionally ``calibration.json``, ``training.json``, ``adaptation.json`` and
``MODEL_CARD.md``. No torch anywhere: loading, predicting, adapting and fine-tuning run on
ONNX Runtime and NumPy.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from voxemo.core.config import Config
from voxemo.core.errors import ModelError, VoxemoError, first_line
from voxemo.dsp.scoring import clip_windows
from voxemo.inference.adaptset import PRIOR_SECONDS, AdaptationRecord, AdaptationSet, LabelledSet
from voxemo.inference.classifier import Classifier
from voxemo.inference.encoders import ENCODER_FILE, encode, encode_clips, encoder_session, resolve_encoder
from voxemo.io.files import atomic_write, atomic_write_text
from voxemo.io.modelfile import CALIBRATION, CONFIG, LABELS, folder_calibration, save_calibration
from voxemo.nn.probe import HEAD_FILE, TUNE_C, ProbeHead

if TYPE_CHECKING:
    from voxemo.nn.finetune import FineTuneConfig


class _HeadRecipe:
    """How :meth:`ProbeClassifier.tuned` fine-tunes, as ``adaptation.json`` records a recipe."""

    def to_dict(self) -> dict[str, Any]:
        return {"scope": "linear layer", "solver": "L-BFGS", "c": TUNE_C}


def is_probe_folder(path: Path) -> bool:
    """Whether ``path`` is a model folder of the encoder family (it holds ``head.npz``)."""
    return (path / HEAD_FILE).is_file()


class ProbeClassifier(Classifier):
    """A frozen shared encoder and a linear head (see the module docstring).

    Attributes
    ----------
    head : ProbeHead
        Standardisation moments and the linear layer.
    encoder : dict
        The model's ``encoder.json``: ``{"name", "sha256"}`` (and ``"path"`` for an encoder outside the package).
    threads : int
        Intra-op threads of the encoder's ONNX Runtime session (default 1).
    """

    backend = "onnx"

    def __init__(self, head: ProbeHead, config: Config, classes: Sequence[str], encoder: dict[str, str], *,
                 encoder_path: Path | None = None, threads: int = 1) -> None:
        super().__init__(config, classes)
        if head.n_classes != len(self.classes_):
            raise ModelError(f"the head has {head.n_classes} outputs for {len(self.classes_)} labels")
        self.head = head
        self.encoder = dict(encoder)
        self.threads = threads
        self._encoder_path = encoder_path

    # ---- the network ---------------------------------------------------------------------------------------
    def _session(self) -> Any:
        if self._encoder_path is None:
            raise ModelError("this model does not know where its encoder file is")
        return encoder_session(str(self._encoder_path), self.encoder["sha256"], self.threads)

    def window_features(self, x: np.ndarray) -> np.ndarray:
        """Pooled encoder features of log-mel windows of one length: (n, n_mels, frames) -> (n, n_features)."""
        feats = encode(self._session(), x)
        if feats.shape[1] != self.head.n_features:
            raise ModelError(f"the encoder gives {feats.shape[1]} features, the head reads {self.head.n_features}")
        return feats

    def segment_proba(self, x: np.ndarray) -> np.ndarray:
        """Probabilities for log-mel windows of one length: (n, n_mels, n_frames) -> (n, n_classes), float32."""
        logits = self.head.logits(self.window_features(x)).astype(np.float64)
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)

    def clip_features(self, specs: Sequence[np.ndarray]) -> np.ndarray:
        """Every window's encoder features of the clips ``specs`` (log-mels), stacked: (n_windows, n_features)."""
        per_clip = encode_clips(self._session(), clip_windows(list(specs), self.config))
        return np.concatenate(per_clip) if per_clip else np.zeros((0, self.head.n_features), np.float32)

    # ---- adaptation ----------------------------------------------------------------------------------------
    def adapted(self, adaptation_set: AdaptationSet, *, prior_seconds: float | None = None) -> ProbeClassifier:
        """A new classifier whose head's standardisation moments move towards those of the adaptation set's
        windows (mixture moments, the set weighing :meth:`AdaptationSet.weight`); see :meth:`Classifier.adapt`."""

        weight = adaptation_set.weight(PRIOR_SECONDS if prior_seconds is None else prior_seconds)
        head = self.head.adapted(self.clip_features(adaptation_set.specs), weight)
        mean_shift, std_ratio = self.head.shift(head)
        layer = {"layer": "head standardisation", "mean_shift": round(mean_shift, 4),
                 "std_ratio": round(std_ratio, 4)}
        record = adaptation_set.record(weight, [[layer]], base=self.origin(), previous=self.adaptation,
                                       method="standardisation of the encoder's features")
        return self._derived(head, record)

    def tuned(self, labelled: LabelledSet, recipe: FineTuneConfig | None = None) -> ProbeClassifier:
        """A new classifier whose linear layer is refitted on the labelled clips' windows with an L2 pull to the
        trained weights (:meth:`voxemo.nn.probe.ProbeHead.tuned`; ``recipe``, the CNN's, does not apply and must
        be None); see :meth:`Classifier.fine_tune`."""
        if recipe is not None:
            raise ModelError("an encoder-family model refits its linear layer; the CNN fine-tuning recipe "
                             "(--mode, --steps, --lr) does not apply to it")
        wins = clip_windows(list(labelled.specs), self.config)
        feats = encode_clips(self._session(), wins)
        x = np.concatenate(feats)
        y = np.concatenate([[label] * len(f) for f, label in zip(feats, labelled.labels)]).astype(int)
        head = self.head.tuned(x, y, c=TUNE_C)
        record = labelled.record(_HeadRecipe(), [str(c) for c in self.classes_], [], base=self.origin(),
                                 previous=self.adaptation)
        return self._derived(head, record)

    def _derived(self, head: ProbeHead, record: AdaptationRecord) -> ProbeClassifier:
        clf = ProbeClassifier(head, self.config, [str(c) for c in self.classes_], self.encoder,
                              encoder_path=self._encoder_path, threads=self.threads)
        self.copy_settings(clf)
        clf.adaptation = record
        return clf

    # ---- persistence ---------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], *, report: dict[str, Any] | None = None,
             onnx: bool | str = False) -> Path:
        """Write the model folder (each file to a temporary name, then renamed into place). ``onnx`` is accepted
        for the callers' sake: the encoder is already an ONNX file, referred to and never copied, and the head is
        NumPy, so nothing more is written."""
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / HEAD_FILE, lambda f: self.head.save(f))
        atomic_write_text(out / CONFIG, json.dumps(self.config.to_dict(), indent=2))
        atomic_write_text(out / LABELS, json.dumps([str(c) for c in self.classes_]))
        atomic_write_text(out / ENCODER_FILE, json.dumps(self.encoder, indent=2))
        if report is not None:
            atomic_write_text(out / "training.json", json.dumps(report, indent=2))
        if self.temperature != 1.0 or self.calibration:
            save_calibration(out, {**self.calibration, "temperature": float(self.temperature)})
        else:
            (out / CALIBRATION).unlink(missing_ok=True)
        return out

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, threads: int = 1) -> ProbeClassifier:
        """Load a model folder written by :meth:`save` (the encoder's hash is checked when it first runs)."""
        d = Path(path)
        missing = [n for n in (CONFIG, LABELS, HEAD_FILE, ENCODER_FILE) if not (d / n).is_file()]
        if missing:
            raise ModelError(f"{d}: not a voxemo encoder-family model folder (missing {', '.join(missing)})")
        encoder_path, _ = resolve_encoder(d)
        try:
            config = Config.from_dict(json.loads((d / CONFIG).read_text()))
            classes = json.loads((d / LABELS).read_text())
            encoder = json.loads((d / ENCODER_FILE).read_text())
            head = ProbeHead.load(d / HEAD_FILE)
            temperature, calibration = folder_calibration(d)
        except (VoxemoError, ValueError, KeyError, TypeError, OSError) as exc:
            raise ModelError(f"{d}: cannot load model ({first_line(exc)})") from None
        clf = cls(head, config, classes, encoder, encoder_path=encoder_path, threads=threads)
        clf.temperature, clf.calibration, clf.model_dir = temperature, calibration, d
        return clf
