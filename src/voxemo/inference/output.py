"""Batch results written out: one line per input in text, JSON lines or CSV (:class:`ResultWriter`; Parquet is
:mod:`voxemo.inference.parquet`), and what an earlier run of the same output already finished (``--resume``)."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from voxemo.core.errors import ConfigError
from voxemo.inference.classifier import Classifier
from voxemo.inference.parquet import ParquetWriter, read_finished_parquet
from voxemo.inference.results import FileFailure, FileResult, NoSpeech, Uncertain

#: formats written line by line (:class:`ResultWriter`); Parquet: :class:`~voxemo.inference.parquet.ParquetWriter`
LINE_FORMATS = ("text", "json", "csv")

def csv_header(classes: Iterable[str]) -> list[str]:
    """CSV columns: path, emotion, confidence, one probability per class, error, speech, reason.

    ``speech`` is ``true``/``false`` (empty for an error); ``reason`` says why a row has no emotion (no speech, or
    uncertain below ``--min-confidence``). Both came last so that a reader of the older columns finds them where
    they were.
    """
    return ["path", "emotion", "confidence", *map(str, classes), "error", "speech", "reason"]


class ResultWriter:
    """Writes one result per line and flushes it: JSON lines, CSV, or the human text format."""

    def __init__(self, out: IO[str], fmt: str, classes: Iterable[str], *, err: IO[str] | None = None) -> None:
        if fmt not in LINE_FORMATS:
            raise ConfigError(f"output format {fmt!r} is not one of {', '.join(LINE_FORMATS)}")
        self.out, self.fmt, self.err = out, fmt, err or sys.stderr
        self.classes = [str(c) for c in classes]

    def write_header(self) -> None:
        if self.fmt == "csv":
            self._line(csv_header(self.classes))

    def write(self, result: FileResult) -> None:
        if self.fmt == "json":
            self.out.write(json.dumps(result.to_dict()) + "\n")
        elif self.fmt == "csv":
            if isinstance(result, FileFailure):
                self._line([result.path, "", "", *([""] * len(self.classes)), result.error, "", ""])
            elif isinstance(result, NoSpeech):
                self._line([result.path, "", "", *([""] * len(self.classes)), "", "false", result.reason])
            else:
                reason = result.reason if isinstance(result, Uncertain) else ""
                self._line([result.path, result.emotion or "", result.confidence,
                            *(result.probabilities.get(c, "") for c in self.classes), "", "true", reason])
        elif isinstance(result, FileFailure):
            print(f"voxemo: error: {result.error}", file=self.err, flush=True)
            return
        elif isinstance(result, NoSpeech):
            self.out.write(f"{result.path}\tno speech\t-\n")
        elif isinstance(result, Uncertain):
            self.out.write(f"{result.path}\tuncertain\t{result.confidence:.2f}\n")
        else:
            self.out.write(f"{result.path}\t{result.emotion}\t{result.confidence:.2f}\n")
        self.out.flush()

    def _line(self, row: list[Any]) -> None:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(row)
        self.out.write(buf.getvalue())  # one write per line: a kill can cut at most the last line
        self.out.flush()


def read_finished(path: str | os.PathLike[str], fmt: str, header: list[str]) -> dict[str, bool]:
    """Inputs already in an output file, as ``{path: failed}``; drops a last line cut off by a kill.

    The file is checked before anything in it changes: a file that is not a results file of this format is left
    exactly as it was, and only a voxemo file loses its cut-off last line.

    Raises
    ------
    ConfigError
        The file is not a results file of this format (and, for CSV, of this model's classes): appending to it
        would mix formats.
    """
    p = Path(path)
    if not p.is_file() or p.stat().st_size == 0:
        return {}
    data = p.read_bytes()
    cut = data.rfind(b"\n") + 1
    lines = data[:cut].decode("utf-8", errors="replace").splitlines()
    finished = _finished_csv(p, lines, header) if fmt == "csv" else _finished_json(p, lines)
    if cut < len(data):  # an unterminated last line: written partly when the run was stopped
        tail = data[cut:].decode("utf-8", errors="replace")
        ours = tail.startswith('{"path": ') if fmt != "csv" else (lines != [] or ",".join(header).startswith(tail))
        if not (lines or ours):
            raise ConfigError(f"{p}: not a voxemo results file (no complete line, and the text is not a cut-off "
                              "result); use a new --output file")
        with open(p, "rb+") as f:
            f.truncate(cut)
    return finished


def _finished_csv(p: Path, lines: list[str], header: list[str]) -> dict[str, bool]:
    finished: dict[str, bool] = {}
    rows = csv.reader(lines)
    first = next(rows, None)
    if first is None:
        return finished
    error = header.index("error")
    if first != header:
        raise ConfigError(f"{p}: CSV header {first} is not this model's {header}; use a new --output file")
    for row in rows:
        if len(row) != len(header):
            raise ConfigError(f"{p}: a CSV row has {len(row)} columns, not {len(header)}; not a voxemo results file")
        finished[row[0]] = bool(row[error])
    return finished


def _finished_json(p: Path, lines: list[str]) -> dict[str, bool]:
    finished: dict[str, bool] = {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            finished[row["path"]] = "error" in row
        except (ValueError, KeyError, TypeError):
            raise ConfigError(f"{p}:{n}: not a voxemo JSON result line; is this the right --output file?") from None
    return finished


def open_output(clf: Classifier, fmt: str, output: str | os.PathLike[str] | None, resume: bool,
                 stream: IO[str]) -> tuple[ResultWriter | ParquetWriter, dict[str, bool], IO[str] | None]:
    """The writer, the inputs already finished (with ``resume``) and the file handle to close (None: stdout)."""
    if output is not None and fmt == "parquet":
        finished = read_finished_parquet(output, clf.classes_) if resume else {}
        return ParquetWriter(output, clf.classes_, resume=resume), finished, None
    finished, handle = {}, None
    if output is not None:
        if resume:
            finished = read_finished(output, fmt, csv_header(clf.classes_))
        new_file = not (resume and Path(output).is_file() and Path(output).stat().st_size > 0)
        try:
            handle = open(output, "a" if resume else "w", encoding="utf-8", newline="")
        except OSError as exc:
            raise ConfigError(f"{output}: cannot write results ({exc.strerror or exc})") from None
        stream = handle
    writer = ResultWriter(stream, fmt, clf.classes_)
    if handle is None or new_file:
        writer.write_header()
    return writer, finished, handle
