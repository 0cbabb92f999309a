"""Typed per-file results of prediction: a :class:`Prediction`, or a :class:`FileFailure` with its one-line cause.

Both serialise with ``to_dict()`` to the JSON objects ``voxemo predict --json`` prints, one per input line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Prediction:
    """One file's emotion: the most probable class, its probability and every class' probability (rounded to
    4 decimals, as printed)."""

    path: str
    emotion: str
    confidence: float
    probabilities: dict[str, float] = field(default_factory=dict)

    #: a prediction is never a failure (lets callers count failures without isinstance)
    failed = False

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "emotion": self.emotion, "confidence": self.confidence,
                "probabilities": dict(self.probabilities)}


@dataclass(frozen=True)
class FileFailure:
    """An input that could not be predicted, with a one-line message naming the file and the cause."""

    path: str
    error: str

    failed = True

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "error": self.error}


#: what prediction gives for one input
FileResult = Prediction | FileFailure
