"""The torch backend: :class:`EmotionClassifier` runs the network with torch, saves and loads model folders, and
:func:`export_onnx` writes its network for the ONNX backend.

A model folder (:mod:`voxemo.io.modelfile`) holds ``weights.pt`` (a plain state dict, loaded with
``weights_only=True`` so nothing arbitrary is unpickled), ``config.json`` (the full
:class:`~voxemo.core.config.Config`), ``labels.json``, from training ``training.json``, and optionally
``calibration.json`` (the softmax temperature; absent means T = 1) and ``model.onnx``. Importing this module does
not import torch: torch is imported when a model is loaded, saved or run.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from voxemo.core.config import Config
from voxemo.core.errors import ModelError, VoxemoError, first_line
from voxemo.core.extras import require
from voxemo.inference.adaptset import PRIOR_SECONDS
from voxemo.inference.classifier import Classifier
from voxemo.io.files import atomic_write, file_digest
from voxemo.io.modelfile import (
    CALIBRATION,
    CONFIG,
    LABELS,
    ONNX_FILE,
    SOURCE_STATS,
    WEIGHTS,
    folder_calibration,
    save_calibration,
)

if TYPE_CHECKING:
    from voxemo.inference.adaptset import AdaptationRecord, AdaptationSet, LabelledSet
    from voxemo.nn.adapt import SourceStats
    from voxemo.nn.finetune import FineTuneConfig
    from voxemo.nn.model import EmotionCNN, EmotionEnsemble

log = logging.getLogger(__name__)


class EmotionClassifier(Classifier):
    """A trained emotion model with its preprocessing, run with torch.

    Attributes
    ----------
    model : EmotionCNN or EmotionEnsemble
    classes_ : np.ndarray of str
        Emotion labels in the order of the probability columns.
    config : Config
        Preprocessing, architecture and training configuration the model was trained with.
    threads : int
        Torch threads used while predicting (default 1: a clip is a few windows, and a second thread only adds
        waiting); 0 keeps torch's setting, which suits large batches.
    """

    backend = "torch"

    def __init__(self, model: EmotionCNN | EmotionEnsemble, config: Config, classes: Sequence[str], *,
                 threads: int = 1) -> None:
        super().__init__(config, classes)
        self.model = model.eval()
        self.threads = threads
        #: each member's training-speech moments (:func:`voxemo.nn.adapt.measure_source`); None: cannot adapt
        self.source_stats: list[SourceStats] | None = None

    # ---- persistence -------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], *, report: dict[str, Any] | None = None,
             onnx: bool | str = False) -> Path:
        """Write the model directory (files are written to temporary names and renamed into place).

        With ``onnx`` the network is also exported to ``model.onnx`` (a few seconds), which :func:`load_model`
        then prefers; without it an older ``model.onnx`` there is removed, so it can never outlive its weights.
        An export that fails leaves a working torch model and logs why. ``onnx="only"`` stores the network once,
        as ``model.onnx`` (which carries the whole torch state, as the shipped folders do), and no ``weights.pt``; a
        failed export then raises.
        """
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        torch = require("torch", f"{path}: the torch backend")

        if onnx == "only":
            export_onnx(self, out / ONNX_FILE)
            (out / WEIGHTS).unlink(missing_ok=True)
        else:
            atomic_write(out / WEIGHTS, lambda f: torch.save(self.model.state_dict(), f))
        atomic_write(out / CONFIG, lambda f: f.write(json.dumps(self.config.to_dict(), indent=2).encode()))
        atomic_write(out / LABELS, lambda f: f.write(json.dumps(list(map(str, self.classes_))).encode()))
        if report is not None:
            atomic_write(out / "training.json", lambda f: f.write(json.dumps(report, indent=2).encode()))
        if self.temperature != 1.0 or self.calibration:
            save_calibration(out, {**self.calibration, "temperature": float(self.temperature)})
        else:
            (out / CALIBRATION).unlink(missing_ok=True)  # an uncalibrated model over an old folder
        if self.source_stats is not None:
            from voxemo.nn.adapt import stats_arrays

            arrays = stats_arrays(self.source_stats)
            atomic_write(out / SOURCE_STATS, lambda f: np.savez(f, **arrays))  # type: ignore[arg-type]
        else:
            (out / SOURCE_STATS).unlink(missing_ok=True)
        if onnx == "only":
            return out
        (out / ONNX_FILE).unlink(missing_ok=True)
        if onnx:
            try:
                export_onnx(self, out / ONNX_FILE, weights_digest=file_digest(out / WEIGHTS))
            except ModelError as exc:
                log.warning("%s not written, predictions will run with torch: %s", out / ONNX_FILE, exc)
        return out

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> EmotionClassifier:
        """Load a model directory written by :meth:`save`: its ``weights.pt``, or without one the state its
        ``model.onnx`` carries (:func:`voxemo.nn.export.state_from_onnx`)."""
        torch = require("torch", f"{path}: the torch backend")

        from voxemo.nn.train import build_model

        d = Path(path)
        if not d.is_dir():
            raise ModelError(f"{d}: model directory not found")
        missing = [n for n in (CONFIG, LABELS) if not (d / n).is_file()]
        if not (d / WEIGHTS).is_file() and not (d / ONNX_FILE).is_file():
            missing.append(f"{WEIGHTS} or {ONNX_FILE}")
        if missing:
            raise ModelError(f"{d}: not a voxemo model directory (missing {', '.join(missing)})")
        try:
            config = Config.from_dict(json.loads((d / CONFIG).read_text()))
            classes = json.loads((d / LABELS).read_text())
            if (d / WEIGHTS).is_file():
                state = torch.load(d / WEIGHTS, map_location="cpu", weights_only=True)
            else:  # the network stored once, as ONNX (the shipped folders): the state it carries
                from voxemo.nn.export import state_from_onnx

                state = state_from_onnx(d / ONNX_FILE)
            model = build_model(config, len(classes))
            model.load_state_dict(state)
            temperature, calibration = folder_calibration(d)
            source = None
            if (d / SOURCE_STATS).is_file():
                from voxemo.nn.adapt import stats_from_arrays

                with np.load(d / SOURCE_STATS, allow_pickle=False) as z:
                    source = stats_from_arrays({k: z[k] for k in z.files})
        except (VoxemoError, ValueError, RuntimeError, KeyError, TypeError, OSError, pickle.UnpicklingError) as exc:
            raise ModelError(f"{d}: cannot load model ({first_line(exc)})") from None
        clf = cls(model, config, classes)
        clf.temperature, clf.calibration, clf.source_stats, clf.model_dir = temperature, calibration, source, d
        return clf

    def adapted(self, adaptation_set: AdaptationSet, *, prior_seconds: float | None = None) -> EmotionClassifier:
        """A new classifier whose normalisation statistics are adapted to ``adaptation_set``
        (:func:`voxemo.nn.adapt.adapt_norm_stats`); this one is not changed. See :meth:`Classifier.adapt`."""

        from voxemo.nn.adapt import adapt_norm_stats

        weight = adaptation_set.weight(PRIOR_SECONDS if prior_seconds is None else prior_seconds)
        model = copy.deepcopy(self.model)
        if self.source_stats is None:
            raise ModelError(f"{self.model_dir or 'this model'}: has no {SOURCE_STATS} (the training speech's "
                             "statistics that adaptation compares with); retrain it with this version of voxemo")
        shifts = adapt_norm_stats(model, adaptation_set.specs, self.source_stats, weight)
        record = adaptation_set.record(weight, [[s.to_dict() for s in m] for m in shifts], base=self.origin(),
                                       previous=self.adaptation)
        return self._derived(model, record)

    def tuned(self, labelled: LabelledSet, recipe: FineTuneConfig | None = None) -> EmotionClassifier:
        """A new classifier fine-tuned on labelled clips (:func:`voxemo.nn.finetune.fine_tune`); this one is not
        changed. See :meth:`Classifier.fine_tune`."""

        from voxemo.nn.finetune import FineTuneConfig, fine_tune

        recipe = recipe or FineTuneConfig()
        model = copy.deepcopy(self.model)
        losses = fine_tune(model, labelled.specs, np.asarray(labelled.labels), self.config, recipe)
        return self._derived(model, labelled.record(recipe, [str(c) for c in self.classes_], [m[-1] for m in losses],
                                                    base=self.origin(), previous=self.adaptation))

    def _derived(self, model: EmotionCNN | EmotionEnsemble, record: AdaptationRecord) -> EmotionClassifier:
        """A classifier of ``model`` (this one's network, changed) with this one's settings and training statistics,
        and ``record`` saying what changed it."""
        clf = EmotionClassifier(model, self.config, [str(c) for c in self.classes_], threads=self.threads)
        self.copy_settings(clf)
        clf.source_stats, clf.adaptation = self.source_stats, record
        return clf

    def segment_proba(self, x: np.ndarray) -> np.ndarray:
        """Probabilities for fixed-length log-mel segments: (n, n_mels, n_frames) -> (n, n_classes), float32."""
        import torch  # present: this model was built with it

        from voxemo.nn.train import predict_segments

        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads or previous)
        try:
            return predict_segments(self.model, x)
        finally:
            torch.set_num_threads(previous)


def export_onnx(clf: Classifier, path: str | os.PathLike[str], *, opset: int | None = None,
                weights_digest: str | None = None) -> Path:
    """Write a torch classifier's network, config, labels and temperature to one ``.onnx`` file (atomically).

    Parameters
    ----------
    clf : EmotionClassifier
        A torch classifier, e.g. ``load_model(backend="torch")`` or ``load_model("runs/study/model", "torch")``.
    path : path-like
        Output file; by convention it ends in ``.onnx``.
    opset : int, optional
        ONNX opset; None lets the exporter choose.
    weights_digest : str, optional
        SHA-256 of the ``weights.pt`` holding these weights (see :func:`voxemo.nn.export.export_network`).

    Returns
    -------
    Path
        The written file.
    """
    if not isinstance(clf, EmotionClassifier):
        raise ModelError(f"{path}: export needs a torch model (a model folder), not {type(clf).__name__}")
    from voxemo.nn.export import export_network

    return export_network(clf.model, clf.config, [str(c) for c in clf.classes_], clf.temperature, path, opset=opset,
                          weights_digest=weights_digest)
