"""Scores of predictions: accuracy, UAR (unweighted average recall) and macro-F1; accuracy per group; the most
frequent confusions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import f1_score, recall_score


def scores(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict[str, float]:
    """Accuracy, UAR (unweighted average recall over classes present) and macro-F1."""
    present = np.unique(y_true)
    return {
        "accuracy": float(np.mean(y_true == y_pred)),
        "uar": float(recall_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
    }


def _field(row: Any, key: str) -> Any:
    return row[key] if isinstance(row, Mapping) else getattr(row, key)


def breakdown(predictions: Sequence[Any], key: str) -> list[dict[str, Any]]:
    """Accuracy per value of ``key`` (``emotion`` = per-class recall, ``intensity``, ``gender``, ``speaker``).

    ``predictions`` are rows with ``emotion``, ``predicted`` and ``key``: mappings or objects with those
    attributes (:class:`~voxemo.experiment.results.FoldPrediction`).
    """
    groups: dict[str, list[bool]] = {}
    for p in predictions:
        groups.setdefault(str(_field(p, key)), []).append(_field(p, "emotion") == _field(p, "predicted"))
    return [{key: k, "n": len(v), "accuracy": float(np.mean(v))} for k, v in sorted(groups.items())]


def top_confusions(confusion: np.ndarray | Sequence[Sequence[int]], labels: Sequence[str],
                   k: int = 8) -> list[dict[str, Any]]:
    """The ``k`` most frequent (true, predicted) mistakes with their share of the true class."""
    cm = np.asarray(confusion)
    pairs = [(int(cm[i, j]), i, j) for i in range(len(labels)) for j in range(len(labels)) if i != j and cm[i, j]]
    pairs.sort(reverse=True)
    return [{"true": labels[i], "predicted": labels[j], "count": c, "share_of_true": c / max(1, int(cm[i].sum()))}
            for c, i, j in pairs[:k]]
