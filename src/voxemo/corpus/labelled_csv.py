"""A corpus described by a CSV manifest: one row per clip with the columns ``path``, ``label``, ``speaker``.

Optional columns: ``gender`` (male/female, empty when unknown) and ``corpus`` (default ``"manifest"``).
Relative paths are resolved against the CSV's folder; every clip must exist. Labels map onto voxemo's
emotions through :data:`voxemo.corpus.folders.LABELS` (voxemo's names and common noun forms, any case).

A manifest written by :func:`voxemo.io.manifest.write_manifest` (``.jsonl``, or ``.csv`` with voxemo's own
columns) is read back with :func:`voxemo.io.manifest.read_manifest` instead.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from voxemo.core.errors import CorpusError
from voxemo.core.records import _FIELDS, Utterance
from voxemo.corpus.base import decode
from voxemo.corpus.folders import map_label
from voxemo.io.manifest import read_manifest

REQUIRED: tuple[str, ...] = ("path", "label", "speaker")
GENDERS: dict[str, str | None] = {"male": "male", "female": "female", "": None}


def _header(path: Path) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CorpusError(f"{path}: cannot read the manifest ({exc})") from None


def is_manifest(path: Path) -> bool:
    """Whether ``path`` is a manifest file this module reads (used by corpus auto-detection)."""
    return path.is_file() and path.suffix.lower() in (".csv", ".jsonl")


def _row(p: Path, line: int, header: list[str], values: list[str]) -> Utterance | None:
    """The record of one CSV row (None for a blank line), or a CorpusError naming the file and line."""
    if not any(v.strip() for v in values):
        return None
    where = f"{p} line {line}"
    if len(values) != len(header):
        raise CorpusError(f"{where}: {len(values)} fields but the header has {len(header)}")
    row = {k: v.strip() for k, v in zip(header, values, strict=True)}
    if not row["path"] or not row["speaker"]:
        raise CorpusError(f"{where}: empty path or speaker")
    clip = Path(row["path"]).expanduser()
    clip = clip if clip.is_absolute() else Path(os.path.normpath(p.parent / clip))
    if not clip.is_file():
        raise CorpusError(f"{where}: clip {clip} not found")
    return Utterance(path=str(clip), corpus=row.get("corpus") or "manifest", speaker=row["speaker"],
                     emotion=map_label(row["label"], where),
                     gender=decode(GENDERS, row.get("gender", "").lower(), "gender", where))


def load_manifest(path: str | os.PathLike[str]) -> list[Utterance]:
    """Load the clips a CSV manifest (``path,label,speaker[,gender][,corpus]``) or a voxemo manifest lists.

    Records keep the manifest's row order.

    Raises
    ------
    CorpusError
        If the file is missing or not CSV/JSONL, a required column is missing, or a row has an empty speaker,
        an unknown label or gender, or names a clip that does not exist; the message names the row.
    """
    p = Path(path)
    if not p.is_file():
        raise CorpusError(f"{p}: manifest not found")
    if p.suffix.lower() == ".jsonl" or (p.suffix.lower() == ".csv" and sorted(_header(p)) == sorted(_FIELDS)):
        return read_manifest(p)
    if p.suffix.lower() != ".csv":
        raise CorpusError(f"{p}: a manifest must be .csv (path,label,speaker) or a voxemo .jsonl manifest")
    header = [h.strip().lower() for h in _header(p)]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise CorpusError(f"{p}: missing column(s) {', '.join(missing)}; the header must name {', '.join(REQUIRED)} "
                          f"(and optionally gender, corpus)")
    try:
        with open(p, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))[1:]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CorpusError(f"{p}: cannot read the manifest ({exc})") from None
    records: list[Utterance] = []
    seen: dict[Path, int] = {}
    for line, values in enumerate(rows, start=2):
        rec = _row(p, line, header, values)
        if rec is None:
            continue
        key = Path(rec.path).resolve()
        if key in seen:
            raise CorpusError(f"{p} line {line}: clip {rec.path} is already listed on line {seen[key]}")
        seen[key] = line
        records.append(rec)
    if not records:
        raise CorpusError(f"{p}: no rows; expected one clip per line after the header")
    return records
