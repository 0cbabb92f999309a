"""Batch results as Parquet, for archive-scale runs (``voxemo predict ... --output results.parquet``).

The output is a Parquet *dataset folder*, as Spark, Ray Data and pandas write and read it: ``results.parquet/``
holds ``part-000000.parquet``, ``part-000001.parquet``, ... in input order. A part is written whole under a
hidden temporary name and renamed into place once it holds :data:`PART_ROWS` results or :data:`PART_SECONDS` have
passed, so a killed run leaves only complete parts: ``--resume`` reads the paths in them and redoes the rest
(at most one part's worth), nothing twice. ``pandas.read_parquet("results.parquet")`` or
``pyarrow.parquet.read_table`` read the whole folder.

Columns are the CSV's (:func:`voxemo.inference.output.csv_header`), typed: ``path``, ``emotion``, ``confidence``,
one float column per class, ``error``, ``speech`` (bool), ``reason``; an empty CSV cell is a null.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from voxemo.core.errors import ConfigError
from voxemo.core.extras import require
from voxemo.inference.results import FileFailure, FileResult, NoSpeech, Uncertain
from voxemo.io.files import atomic_path

#: results per part file (a Parquet row group each)
PART_ROWS = 50_000
#: a part is written at least this often (seconds), so a killed run redoes at most this much work
PART_SECONDS = 30.0

_PART = re.compile(r"part-(\d{6})\.parquet")


def is_parquet(output: str | os.PathLike[str] | None) -> bool:
    """Whether an ``--output`` name asks for Parquet (it ends in ``.parquet``)."""
    return output is not None and str(output).rstrip("/").lower().endswith(".parquet")


def row_of(result: FileResult, classes: Iterable[str]) -> dict[str, Any]:
    """One result as a row of the Parquet columns (None where the CSV has an empty cell)."""
    classes = [str(c) for c in classes]
    row: dict[str, Any] = {"path": result.path, "emotion": None, "confidence": None, **dict.fromkeys(classes),
                           "error": None, "speech": None, "reason": None}
    if isinstance(result, FileFailure):
        row["error"] = result.error
    elif isinstance(result, NoSpeech):
        row.update(speech=False, reason=result.reason)
    else:
        row.update(confidence=result.confidence, speech=True, **{c: result.probabilities.get(c) for c in classes})
        if isinstance(result, Uncertain):
            row["reason"] = result.reason
        else:
            row["emotion"] = result.emotion
    return row


def schema(classes: Iterable[str]) -> Any:
    pa = require("pyarrow", "Parquet output")
    return pa.schema([("path", pa.string()), ("emotion", pa.string()), ("confidence", pa.float64()),
                      *((str(c), pa.float64()) for c in classes),
                      ("error", pa.string()), ("speech", pa.bool_()), ("reason", pa.string())])


def _parts(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if _PART.fullmatch(p.name))


def _check_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder}: Parquet output is a folder of part files, and this is a file; "
                          "use a new --output name")
    if folder.is_dir():
        foreign = [p.name for p in folder.iterdir() if not (_PART.fullmatch(p.name) or p.name.startswith("."))]
        if foreign:
            raise ConfigError(f"{folder}: not a voxemo Parquet results folder (it holds {foreign[0]}); "
                              "use a new --output name")


def read_finished_parquet(folder: str | os.PathLike[str], classes: Iterable[str]) -> dict[str, bool]:
    """Inputs already in a Parquet results folder, as ``{path: failed}``.

    Raises
    ------
    ConfigError
        The folder is not a voxemo Parquet results folder, or its columns are not this model's.
    """
    pq = require("pyarrow.parquet", "Parquet output")
    root = Path(folder)
    _check_folder(root)
    if not root.is_dir():
        return {}
    want = schema(classes)
    finished: dict[str, bool] = {}
    for part in _parts(root):
        table = pq.read_table(part)
        if not table.schema.equals(want):
            raise ConfigError(f"{part}: columns {table.schema.names} are not this model's {want.names}; "
                              "use a new --output name")
        for path, error in zip(table.column("path").to_pylist(), table.column("error").to_pylist()):
            finished[path] = error is not None
    return finished


class ParquetWriter:
    """Writes results to a Parquet dataset folder in complete parts; the same ``write``/``close`` as
    :class:`~voxemo.inference.output.ResultWriter`.

    Parameters
    ----------
    folder : path-like
        The ``.parquet`` folder. Without ``resume`` its part files are removed first.
    classes : iterable of str
        The model's classes (one probability column each).
    resume : bool
        Keep the parts already there and number new ones after them.
    """

    def __init__(self, folder: str | os.PathLike[str], classes: Iterable[str], *, resume: bool = False,
                 rows_per_part: int | None = None, seconds_per_part: float | None = None) -> None:
        self.pq = require("pyarrow.parquet", "Parquet output")
        self.pa = require("pyarrow", "Parquet output")
        self.folder = Path(folder)
        self.classes = [str(c) for c in classes]
        self.schema = schema(self.classes)
        self.rows_per_part = rows_per_part or PART_ROWS
        self.seconds_per_part = PART_SECONDS if seconds_per_part is None else seconds_per_part
        _check_folder(self.folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"{self.folder}: cannot write results ({exc.strerror or exc})") from None
        parts = _parts(self.folder)
        if not resume:
            for p in parts:
                p.unlink()
            parts = []
        self.next_part = int(_PART.fullmatch(parts[-1].name).group(1)) + 1 if parts else 0  # type: ignore[union-attr]
        self.rows: list[dict[str, Any]] = []
        self.since = time.monotonic()

    def write_header(self) -> None:
        """Nothing to do: the columns are in every part."""

    def write(self, result: FileResult) -> None:
        self.rows.append(row_of(result, self.classes))
        if len(self.rows) >= self.rows_per_part or time.monotonic() - self.since >= self.seconds_per_part:
            self.flush()

    def flush(self) -> None:
        """Write the results held so far as the next part (nothing if there are none)."""
        self.since = time.monotonic()
        if not self.rows:
            return
        table = self.pa.Table.from_pylist(self.rows, schema=self.schema)
        with atomic_path(self.folder / f"part-{self.next_part:06d}.parquet") as tmp:
            self.pq.write_table(table, tmp)
        self.next_part += 1
        self.rows = []

    def close(self) -> None:
        self.flush()
