"""Typed results of the experiments: a fold's job and result, an evaluation, a cross-corpus run, the variant
comparison and the study summary.

All are frozen dataclasses defined at module level (process pools pickle :class:`FoldJob` and
:class:`FoldResult`). Each ``to_dict()`` gives the JSON written to the report folders (``metrics.json``,
``variants.json``, ``summary.json``, ``predictions.csv`` rows), key for key in the order written; arrays that
are only needed in memory (clip and window probabilities) are kept out of it. The tables that reports show
(accuracy per group, most frequent confusions) are computed here, so reports only render.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voxemo.core.config import Config
from voxemo.experiment.metrics import breakdown, top_confusions

#: The metrics of every fold, summarised as mean and standard deviation over folds.
METRICS = ("accuracy", "uar", "macro_f1")


@dataclass(frozen=True, eq=False)
class FoldJob:
    """One split to train and test (:func:`~voxemo.experiment.evaluate.fit_and_test`).

    ``train_x``/``val_x``/``test_x`` hold spectrograms (or, for the baseline, its
    :class:`~voxemo.experiment.baseline.EgemapsClip` items); ``train_aug`` the augmented copies of the training
    clips, ``weights`` their sampling weights (multi-corpus) and ``speakers`` their speakers (for
    ``train.speaker_adversary``).
    """

    name: str
    train_x: Sequence[Any]
    train_y: np.ndarray
    val_x: Sequence[Any]
    val_y: np.ndarray
    test_x: Sequence[Any]
    test_y: np.ndarray
    n_classes: int
    config: Config
    train_aug: Sequence[Sequence[np.ndarray]] | None = None
    weights: np.ndarray | None = None
    speakers: Sequence[str] | None = None
    #: torch threads for this job's training (a run setting; 1 gives the same numbers on any machine)
    threads: int = 1


@dataclass(frozen=True, eq=False)
class FoldResult:
    """One split's outcome. The CNN fills ``best_epoch``, ``epochs_run`` and ``history``; the SVM baseline its
    ``C`` and ``inner_uar``. ``probs`` (test clip probabilities) and ``window_probs`` (every test window's) stay
    out of :meth:`to_dict`."""

    name: str
    n_train: int
    n_val: int
    n_test: int
    seconds: float
    accuracy: float
    uar: float
    macro_f1: float
    best_epoch: int | None = None
    epochs_run: int | None = None
    history: tuple[Mapping[str, float], ...] | None = None
    C: float | None = None
    inner_uar: float | None = None
    test_speakers: tuple[str, ...] | None = None
    probs: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32), repr=False)
    window_probs: tuple[np.ndarray, ...] | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"fold": self.name, "n_train": self.n_train, "n_val": self.n_val, "n_test": self.n_test}
        if self.best_epoch is not None:
            d.update(best_epoch=self.best_epoch, epochs_run=self.epochs_run)
        if self.C is not None:
            d.update(C=self.C, inner_uar=self.inner_uar)
        d.update(seconds=self.seconds, accuracy=self.accuracy, uar=self.uar, macro_f1=self.macro_f1)
        if self.history is not None:
            d["history"] = [dict(row) for row in self.history]
        if self.test_speakers is not None:
            d["test_speakers"] = list(self.test_speakers)
        return d


#: runs a fold function on every job and returns the results in job order: the local process pool, or
#: :func:`voxemo.experiment.distributed.ray_fold_runner` for a Ray cluster
FoldRunner = Callable[[Callable[[FoldJob], FoldResult], Sequence[FoldJob]], list[FoldResult]]


@dataclass(frozen=True)
class Scores:
    """Accuracy, UAR and macro-F1 of a set of predictions."""

    accuracy: float
    uar: float
    macro_f1: float

    @classmethod
    def from_dict(cls, d: Mapping[str, float]) -> Scores:
        return cls(float(d["accuracy"]), float(d["uar"]), float(d["macro_f1"]))

    def to_dict(self) -> dict[str, float]:
        return {"accuracy": self.accuracy, "uar": self.uar, "macro_f1": self.macro_f1}


@dataclass(frozen=True)
class MeanStd:
    mean: float
    std: float

    def to_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "std": self.std}


@dataclass(frozen=True)
class Summary:
    """Each metric's mean ± standard deviation over folds."""

    accuracy: MeanStd
    uar: MeanStd
    macro_f1: MeanStd

    @classmethod
    def of(cls, folds: Sequence[FoldResult]) -> Summary:
        stat = lambda m: MeanStd(float(np.mean([getattr(f, m) for f in folds])),  # noqa: E731
                                 float(np.std([getattr(f, m) for f in folds])))
        return cls(stat("accuracy"), stat("uar"), stat("macro_f1"))

    def items(self) -> list[tuple[str, MeanStd]]:
        return [(m, getattr(self, m)) for m in METRICS]

    def to_dict(self) -> dict[str, dict[str, float]]:
        return {m: v.to_dict() for m, v in self.items()}


@dataclass(frozen=True)
class FoldPrediction:
    """One test clip of an evaluation, scored by the fold that held it out (a row of ``predictions.csv``; what
    prediction itself returns is :class:`voxemo.inference.results.Prediction`)."""

    path: str
    speaker: str
    gender: str | None
    intensity: str | None
    emotion: str
    predicted: str
    fold: str
    confidence: float
    confidence_calibrated: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "speaker": self.speaker, "gender": self.gender, "intensity": self.intensity,
                "emotion": self.emotion, "predicted": self.predicted, "fold": self.fold,
                "confidence": self.confidence, "confidence_calibrated": self.confidence_calibrated}


@dataclass(frozen=True)
class BaselineInfo:
    """What the eGeMAPS + SVM baseline is (``metrics.json``'s ``baseline``)."""

    features: str
    classifier: str
    C_grid: tuple[float, ...]
    C_selection: str

    def to_dict(self) -> dict[str, Any]:
        return {"features": self.features, "classifier": self.classifier, "C_grid": list(self.C_grid),
                "C_selection": self.C_selection}


def _rows(rows: Sequence[Any]) -> list[dict[str, Any]]:
    return [r.to_dict() for r in rows]


@dataclass(frozen=True, eq=False)
class Evaluation:
    """A cross-validated evaluation (:func:`~voxemo.experiment.evaluate.evaluate`). ``calibration`` is the
    JSON summary of :func:`~voxemo.experiment.calibration.evaluate_folds`; ``confusion`` is summed over folds
    (rows true, columns predicted, in ``labels`` order). ``model``, ``skipped`` and ``baseline`` are set by the
    baseline only."""

    protocol: str
    labels: tuple[str, ...]
    folds: tuple[FoldResult, ...]
    summary: Summary
    pooled: Scores
    confusion: np.ndarray
    predictions: tuple[FoldPrediction, ...]
    calibration: Mapping[str, Any]
    config: Config
    model: str | None = None
    skipped: tuple[str, ...] | None = None
    baseline: BaselineInfo | None = None

    def per_group(self, key: str) -> list[dict[str, Any]]:
        """Accuracy per value of a prediction field (``emotion`` = recall per class, ``intensity``, ...)."""
        return breakdown(self.predictions, key)

    def top_confusions(self, k: int = 8) -> list[dict[str, Any]]:
        return top_confusions(self.confusion, self.labels, k)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "protocol": self.protocol, "labels": list(self.labels), "folds": _rows(self.folds),
            "summary": self.summary.to_dict(), "pooled": self.pooled.to_dict(), "confusion": self.confusion.tolist(),
            "predictions": _rows(self.predictions), "calibration": dict(self.calibration),
            "config": self.config.to_dict(),
        }
        if self.model is not None:
            d["model"] = self.model
        if self.skipped is not None:
            d["skipped"] = list(self.skipped)
        if self.baseline is not None:
            d["baseline"] = self.baseline.to_dict()
        return d

    def metrics_dict(self) -> dict[str, Any]:
        """``metrics.json``: everything but the predictions, plus the breakdown tables."""
        d = {k: v for k, v in self.to_dict().items() if k != "predictions"}
        d.update({"confusion_labels": list(self.labels), "per_class": self.per_group("emotion"),
                  "per_intensity": self.per_group("intensity"), "per_gender": self.per_group("gender"),
                  "per_speaker": self.per_group("speaker"), "top_confusions": self.top_confusions()})
        return d


# ---- cross-corpus ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClassRecall:
    emotion: str
    n: int
    recall: float

    def to_dict(self) -> dict[str, Any]:
        return {"emotion": self.emotion, "n": self.n, "recall": self.recall}


@dataclass(frozen=True, eq=False)
class SubsetScores:
    """Scores over a subset of classes (:func:`~voxemo.experiment.crosscorpus.score_subset`); ``kept`` (indices of
    the scored clips) and ``predicted`` (the class predicted for each) stay out of :meth:`to_dict`."""

    labels: tuple[str, ...]
    n: int
    accuracy: float
    uar: float
    macro_f1: float
    confusion: np.ndarray
    per_class: tuple[ClassRecall, ...]
    kept: tuple[int, ...] = ()
    predicted: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"labels": list(self.labels), "n": self.n, "accuracy": self.accuracy, "uar": self.uar,
                "macro_f1": self.macro_f1, "confusion": self.confusion.tolist(), "per_class": _rows(self.per_class)}


@dataclass(frozen=True)
class CrossCorpusPrediction:
    """One scored test clip of a cross-corpus run (a row of ``predictions.csv``)."""

    path: str
    corpus: str
    speaker: str
    gender: str | None
    intensity: str | None
    emotion: str
    predicted: str
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "corpus": self.corpus, "speaker": self.speaker, "gender": self.gender,
                "intensity": self.intensity, "emotion": self.emotion, "predicted": self.predicted,
                "confidence": self.confidence}


@dataclass(frozen=True, eq=False)
class CrossCorpusScores:
    """A model's test-corpus scores on the shared classes
    (:func:`~voxemo.experiment.crosscorpus.score_cross_corpus`)."""

    shared_classes: tuple[str, ...]
    excluded: Mapping[str, int]
    shared: SubsetScores
    predictions: tuple[CrossCorpusPrediction, ...]
    four_class: SubsetScores | None

    def to_dict(self) -> dict[str, Any]:
        return {"shared_classes": list(self.shared_classes), "excluded": dict(self.excluded), **self.shared.to_dict(),
                "predictions": _rows(self.predictions),
                "four_class": self.four_class.to_dict() if self.four_class else None}


@dataclass(frozen=True)
class ShotScores:
    """One point of a few-shot learning curve (:mod:`voxemo.experiment.fewshot`): K labelled clips per class, the UAR
    of every draw over the shared classes and, when all four are shared, over angry/happy/neutral/sad."""

    k: int
    uar: tuple[float, ...]
    uar4: tuple[float, ...] | None

    def to_dict(self) -> dict[str, Any]:
        def stats(v: Sequence[float]) -> dict[str, Any]:
            return {"mean": float(np.mean(v)), "std": float(np.std(v)), "draws": [round(float(x), 4) for x in v]}

        return {"k": self.k, "uar": stats(self.uar), "uar4": stats(self.uar4) if self.uar4 else None}


@dataclass(frozen=True, eq=False)
class CrossCorpusResult:
    """A cross-corpus run (:func:`~voxemo.experiment.crosscorpus.cross_corpus`): clips per corpus on each side, the
    model's classes, its training, and its scores; with ``adapted`` the scores after unsupervised adaptation to the
    test corpus' audio, with ``shots`` a few-shot learning curve."""

    train: Mapping[str, int]
    test: Mapping[str, int]
    model_labels: tuple[str, ...]
    epochs: int
    seconds: float
    scores: CrossCorpusScores
    config: Config
    skipped: tuple[str, ...] | None = None
    protocol: str = "cross-corpus"
    adapted: CrossCorpusScores | None = None
    adaptation: Mapping[str, Any] | None = None
    shots: tuple[ShotScores, ...] = ()
    #: the trained model that was scored (a folder), when none was trained here (``train`` is then empty)
    model: str | None = None

    @property
    def shared(self) -> SubsetScores:
        return self.scores.shared

    @property
    def four_class(self) -> SubsetScores | None:
        return self.scores.four_class

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"protocol": self.protocol, "train": dict(self.train), "test": dict(self.test),
                             "model_labels": list(self.model_labels), "epochs": self.epochs, "seconds": self.seconds,
                             **self.scores.to_dict(), "config": self.config.to_dict()}
        if self.skipped is not None:
            d["skipped"] = list(self.skipped)
        if self.adapted is not None:
            d["adapted"] = {k: v for k, v in self.adapted.to_dict().items() if k != "predictions"}
            d["adaptation"] = dict(self.adaptation or {})
        if self.shots:
            d["shots"] = [s.to_dict() for s in self.shots]
        if self.model is not None:
            d["model"] = self.model
        return d

    def per_group(self, key: str) -> list[dict[str, Any]]:
        return breakdown(self.scores.predictions, key)

    def top_confusions(self, k: int = 8) -> list[dict[str, Any]]:
        return top_confusions(self.shared.confusion, self.shared.labels, k)

    def metrics_dict(self) -> dict[str, Any]:
        """``metrics.json``: everything but the predictions, plus the breakdown tables."""
        d = {k: v for k, v in self.to_dict().items() if k != "predictions"}
        d.update({"confusion_labels": list(self.shared.labels), "per_gender": self.per_group("gender"),
                  "per_speaker": self.per_group("speaker"), "top_confusions": self.top_confusions()})
        return d


# ---- training recipe and study ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class VariantResult:
    """One output-bias variant's validation run."""

    bias_init: bool
    first_epoch_val_loss: float
    first_epoch_val_accuracy: float
    best_epoch: int
    best_val_loss: float
    best_val_accuracy: float
    history: tuple[Mapping[str, float], ...]

    def to_dict(self, *, history: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {
            "bias_init": self.bias_init, "first_epoch_val_loss": self.first_epoch_val_loss,
            "first_epoch_val_accuracy": self.first_epoch_val_accuracy, "best_epoch": self.best_epoch,
            "best_val_loss": self.best_val_loss, "best_val_accuracy": self.best_val_accuracy}
        if history:
            d["history"] = [dict(row) for row in self.history]
        return d


@dataclass(frozen=True)
class VariantComparison:
    """Both output-bias variants on the same validation speakers (:func:`~voxemo.experiment.training.compare_variants`),
    the chosen one and the softmax temperature for the final model (``calibration``; with a temperature taken
    from an evaluation instead, the validation fit moves to ``calibration_validation``)."""

    val_speakers: tuple[str, ...]
    variants: Mapping[str, VariantResult]
    chosen: str
    bias_init: bool
    calibration: Mapping[str, Any]
    calibration_validation: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """``variants.json``."""
        d: dict[str, Any] = {"val_speakers": list(self.val_speakers),
                             "variants": {k: v.to_dict() for k, v in self.variants.items()}, "chosen": self.chosen,
                             "bias_init": self.bias_init, "calibration": dict(self.calibration)}
        if self.calibration_validation is not None:
            d["calibration_validation"] = dict(self.calibration_validation)
        return d


@dataclass(frozen=True, eq=False)
class StudySummary:
    """What :func:`~voxemo.workflows.study.run_study` did; :meth:`to_dict` is ``summary.json``."""

    n_clips: int
    n_speakers: int
    skipped: tuple[str, ...]
    recommended: Mapping[str, Any] | None
    variants: VariantComparison
    final_epochs: int
    evaluations: Mapping[str, Evaluation]
    timings_s: Mapping[str, float]
    config: Config

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_clips": self.n_clips, "n_speakers": self.n_speakers, "skipped": list(self.skipped),
            "recommended": dict(self.recommended) if self.recommended is not None else None,
            "variants": {k: v.to_dict(history=False) for k, v in self.variants.variants.items()},
            "chosen_variant": self.variants.chosen, "final_epochs": self.final_epochs,
            "calibration": dict(self.variants.calibration),
            "evaluation": {p: {"summary": e.summary.to_dict(), "pooled": e.pooled.to_dict()}
                           for p, e in self.evaluations.items()},
            "timings_s": dict(self.timings_s), "config": self.config.to_dict(),
        }
