"""Typed per-utterance metadata and the manifest format (JSONL or CSV) it is stored in."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import CorpusError
from .labels import TAXONOMY


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
        One of :data:`voxemo.labels.TAXONOMY` (RAVDESS's eight emotions plus ``"boredom"``).
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


def write_manifest(records: Iterable[Utterance], path: str | os.PathLike[str]) -> Path:
    """Write records as JSON lines (``.jsonl``) or CSV (``.csv``), atomically."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    rows = [r.to_dict() for r in records]
    if p.suffix == ".csv":
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=_FIELDS)
            writer.writeheader()
            writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    elif p.suffix == ".jsonl":
        with open(tmp, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
    else:
        raise CorpusError(f"{p}: manifest must end in .jsonl or .csv")
    os.replace(tmp, p)
    return p


def read_manifest(path: str | os.PathLike[str]) -> list[Utterance]:
    """Read a manifest written by :func:`write_manifest` (``.jsonl`` or ``.csv``)."""
    p = Path(path)
    if not p.is_file():
        raise CorpusError(f"{p}: manifest not found")
    if p.suffix not in (".csv", ".jsonl"):
        raise CorpusError(f"{p}: manifest must end in .jsonl or .csv")
    rows: list[dict[str, object]]
    try:
        if p.suffix == ".csv":
            with open(p, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                # write_manifest always writes the header: without it a garbled file would read as no records
                if sorted(reader.fieldnames or []) != sorted(_FIELDS):
                    raise ValueError(f"CSV header {reader.fieldnames} instead of {_FIELDS}")
                rows = [{k: (v if v != "" else None) for k, v in row.items()} for row in reader]
            for row in rows:
                if row.get("repetition") is not None:
                    row["repetition"] = int(str(row["repetition"]))
        else:
            with open(p, encoding="utf-8") as f:
                rows = [json.loads(line) for line in f if line.strip()]
        return [Utterance(**row) for row in rows]  # type: ignore[arg-type]
    except (ValueError, TypeError, KeyError, CorpusError) as exc:
        raise CorpusError(f"{p}: not a valid voxemo manifest ({exc})") from None
