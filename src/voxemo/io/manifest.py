"""Manifests: :class:`~voxemo.core.records.Utterance` records as JSON lines or CSV (written atomically, read back
typed), and the audio paths any manifest lists (a ``path`` column or key), read lazily line by line.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from voxemo.core.errors import CorpusError
from voxemo.core.records import _FIELDS, Utterance
from voxemo.io.files import atomic_path


def write_manifest(records: Iterable[Utterance], path: str | os.PathLike[str]) -> Path:
    """Write records as JSON lines (``.jsonl``) or CSV (``.csv``), atomically."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.suffix not in (".csv", ".jsonl"):
        raise CorpusError(f"{p}: manifest must end in .jsonl or .csv")
    rows = [r.to_dict() for r in records]
    with atomic_path(p) as tmp:
        if p.suffix == ".csv":
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, fieldnames=_FIELDS)
                writer.writeheader()
                writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
        else:
            with open(tmp, "w", encoding="utf-8") as f:
                for row in rows:
                    f.write(json.dumps(row) + "\n")
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


MANIFEST_EXTENSIONS = (".jsonl", ".csv")


def manifest_inputs(manifest: str | os.PathLike[str]) -> Iterator[tuple[str, str | None]]:
    """The audio paths listed in a manifest, read lazily; a line without a usable path becomes an error item."""
    m = Path(manifest)
    try:
        with open(m, encoding="utf-8", newline="") as f:
            if m.suffix.lower() == ".csv":
                reader = csv.DictReader(f)
                if "path" not in (reader.fieldnames or []):
                    yield str(m), f"{m}: manifest CSV has no 'path' column (header {reader.fieldnames})"
                    return
                for row in reader:
                    yield _manifest_item(m, reader.line_num, row.get("path"))
            else:
                for n, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except ValueError:
                        yield f"{m}:{n}", f"{m}:{n}: not a JSON object"
                        continue
                    yield _manifest_item(m, n, row.get("path") if isinstance(row, dict) else None)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        yield str(m), f"{m}: cannot read manifest ({exc})"


def _manifest_item(manifest: Path, line: int, path: object) -> tuple[str, str | None]:
    if not isinstance(path, str) or not path.strip():
        return f"{manifest}:{line}", f"{manifest}:{line}: no path in this manifest line"
    p = Path(path)
    if not p.is_absolute() and not p.exists() and (manifest.parent / p).exists():
        p = manifest.parent / p
    return str(p), None


def manifest_column(manifest: str | os.PathLike[str], column: str) -> dict[str, str]:
    """``{path: value}`` of ``column`` for the manifest's lines that have both (paths resolved as
    :func:`manifest_inputs` resolves them); unreadable manifests and lines give nothing (they are error items there)."""
    m = Path(manifest)
    out: dict[str, str] = {}
    try:
        with open(m, encoding="utf-8", newline="") as f:
            if m.suffix.lower() == ".csv":
                rows: Iterable[object] = list(csv.DictReader(f))
            else:
                rows = [_json_or_none(line) for line in f if line.strip()]
    except (OSError, UnicodeDecodeError, csv.Error):
        return out
    for n, row in enumerate(rows, 1):
        if isinstance(row, dict) and row.get(column) not in (None, ""):
            path, error = _manifest_item(m, n, row.get("path"))
            if error is None:
                out[path] = str(row[column])
    return out


def _json_or_none(line: str) -> object:
    try:
        return json.loads(line)
    except ValueError:
        return None
