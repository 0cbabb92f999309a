"""Typed per-utterance metadata: :class:`Utterance`, one clip's path, speaker, emotion and the rest. Manifests of
them are written and read by :mod:`voxemo.io.manifest`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from voxemo.core.errors import CorpusError
from voxemo.core.labels import TAXONOMY


@dataclass(frozen=True)
class Utterance:
    """One recording and what its corpus says about it. Audio is read only when needed.

    Attributes
    ----------
    path : str
        Audio file path.
    corpus : str
        Corpus name, e.g. ``"ravdess"``.
    speaker : str
        Speaker id, unique within the corpus (e.g. ``"01"`` for RAVDESS Actor_01).
    emotion : str
        One of :data:`voxemo.core.labels.TAXONOMY` (RAVDESS's eight emotions plus ``"boredom"``).
    gender : str or None
        ``"male"``, ``"female"`` or None when unknown.
    intensity : str or None
        Where the corpus records it: ``"normal"``/``"strong"`` (RAVDESS), ``"low"``/``"medium"``/``"high"``
        (CREMA-D).
    statement : str or None
        Corpus-specific sentence / text id.
    repetition : int or None
        Repetition number where the corpus records it.
    """

    path: str
    corpus: str
    speaker: str
    emotion: str
    gender: str | None = None
    intensity: str | None = None
    statement: str | None = None
    repetition: int | None = None

    def __post_init__(self) -> None:
        if self.emotion not in TAXONOMY:
            raise CorpusError(f"{self.path}: unknown emotion {self.emotion!r}; expected one of {', '.join(TAXONOMY)}")

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


_FIELDS = [f.name for f in dataclasses.fields(Utterance)]
