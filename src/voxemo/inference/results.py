"""Typed per-file results of prediction: a :class:`Prediction`, an :class:`Uncertain` one (below the confidence the
user asked for), :class:`NoSpeech` when the input holds no speech, or a :class:`FileFailure` with its one-line cause.

Each serialises with ``to_dict()`` to the JSON object ``voxemo predict --json`` prints, one per input line:

- ``Prediction``: ``{"path", "emotion", "confidence", "probabilities", "speech": true}``
- ``Uncertain``: ``{"path", "emotion": null, "confidence", "probabilities", "speech": true, "uncertain": true,
  "reason"}``
- ``NoSpeech``: ``{"path", "speech": false, "emotion": null, "reason"}``
- ``FileFailure``: ``{"path", "error"}``
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
    #: the input holds speech
    speech = True

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "emotion": self.emotion, "confidence": self.confidence,
                "probabilities": dict(self.probabilities), "speech": True}


@dataclass(frozen=True)
class Uncertain:
    """Speech whose most probable emotion is less probable than the confidence the caller asked for: no label.

    ``confidence`` is the top class' probability and ``probabilities`` every class', as in :class:`Prediction`.
    """

    path: str
    confidence: float
    probabilities: dict[str, float] = field(default_factory=dict)
    min_confidence: float = 0.0

    failed = False
    speech = True
    emotion = None

    @property
    def reason(self) -> str:
        return f"uncertain: confidence {self.confidence:.2f} is below {self.min_confidence:g}"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "emotion": None, "confidence": self.confidence,
                "probabilities": dict(self.probabilities), "speech": True, "uncertain": True, "reason": self.reason}


@dataclass(frozen=True)
class NoSpeech:
    """An input that holds no speech (silence, noise, tones, music, ...): no emotion is predicted for it.

    ``reason`` starts with ``"no speech found"`` and may say why after a colon
    (:func:`voxemo.dsp.speech.speech_presence`).
    """

    path: str
    reason: str = "no speech found"

    failed = False
    speech = False
    emotion = None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "speech": False, "emotion": None, "reason": self.reason}


@dataclass(frozen=True)
class FileFailure:
    """An input that could not be predicted, with a one-line message naming the file and the cause."""

    path: str
    error: str

    failed = True

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "error": self.error}


#: what prediction gives for one input
FileResult = Prediction | Uncertain | NoSpeech | FileFailure
