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
    """The audio paths listed in a manifest, read lazily; a line without a usable path (none, not UTF-8, a NUL
    byte, too long a name, a line the CSV reader cannot parse) becomes an error item and the next line goes on."""
    m = Path(manifest)
    try:
        for line, row, error in _rows(m):
            if row is None:
                yield (f"{m}:{line}" if line else str(m)), str(error)
            else:
                yield _manifest_item(m, line, row.get("path"))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        yield str(m), f"{m}: cannot read manifest ({exc})"


def _rows(m: Path) -> Iterator[tuple[int, dict[str, object] | None, str | None]]:
    """``(line, row, None)`` for every row of a manifest (a CSV row, or a JSON line's object; ``{}`` for a line that
    is JSON but no object), ``(line, None, error)`` for a line that cannot be read, and ``(0, None, error)`` for a
    CSV without a ``path`` column. A line the CSV reader refuses (a NUL byte, an oversized field) does not stop it."""
    # surrogateescape: a stray non-UTF-8 byte spoils its own line, not the whole file
    with open(m, encoding="utf-8", errors="surrogateescape", newline="") as f:
        if m.suffix.lower() != ".csv":
            for n, text in enumerate(f, 1):
                if text.strip():
                    try:
                        row = json.loads(text)
                    except ValueError:
                        yield n, None, f"{m}:{n}: not a JSON object"
                        continue
                    yield n, row if isinstance(row, dict) else {}, None
            return
        reader = csv.DictReader(f)
        if "path" not in (reader.fieldnames or []):
            yield 0, None, f"{m}: manifest CSV has no 'path' column (header {reader.fieldnames})"
            return
        rows = iter(reader)
        failed_at = -1
        while True:
            try:
                row = next(rows)
            except StopIteration:
                return
            except csv.Error as exc:
                where = reader.line_num + 1  # the reader counts a line once it has parsed it
                if reader.line_num == failed_at:  # a second error without a line read: it cannot go past this one
                    yield where, None, f"{m}:{where}: unreadable CSV from here on ({exc})"
                    return
                failed_at = reader.line_num
                yield where, None, f"{m}:{where}: unreadable CSV line ({exc})"
                continue
            yield reader.line_num, dict(row), None


def _manifest_item(manifest: Path, line: int, path: object) -> tuple[str, str | None]:
    where = f"{manifest}:{line}"
    if not isinstance(path, str) or not path.strip():
        return where, f"{where}: no path in this manifest line"
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return where, f"{where}: the path is not UTF-8 text"
    if "\0" in path:
        return where, f"{where}: the path holds a NUL byte"
    p = Path(path)
    try:
        if not p.is_absolute() and not p.exists() and (manifest.parent / p).exists():
            p = manifest.parent / p
    except OSError as exc:  # e.g. a name longer than the file system allows
        return where, f"{where}: unusable path {path[:60]!r}{'...' if len(path) > 60 else ''} ({exc.strerror or exc})"
    return str(p), None


def manifest_column(manifest: str | os.PathLike[str], column: str) -> dict[str, str]:
    """``{path: value}`` of ``column`` for the manifest's lines that have both (paths resolved as
    :func:`manifest_inputs` resolves them); unreadable manifests and lines give nothing (they are error items there)."""
    m = Path(manifest)
    out: dict[str, str] = {}
    try:
        for line, row, _ in _rows(m):
            if row is not None and row.get(column) not in (None, ""):
                path, error = _manifest_item(m, line, row.get("path"))
                if error is None:
                    out[path] = str(row[column])
    except (OSError, UnicodeDecodeError, csv.Error):
        pass
    return out
