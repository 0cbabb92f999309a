"""``voxemo predict --adapt``: adapt the model to this run's own inputs, then predict them, reading each file once.

Pass one decodes every input in worker processes and keeps what prediction needs (the log-mel of its speech, or
why it has none); the model is adapted on the speech found (:meth:`~voxemo.inference.classifier.Classifier.adapted`);
pass two scores the kept log-mels with the adapted model, in this process, and writes the results in input order
with the same writer as :func:`~voxemo.inference.batch.predict_batch`. The log-mels of all inputs are held in
memory (about 33 kB per 3 s of speech): for an archive, adapt once on a sample (``voxemo adapt``) and predict with
that model instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import IO

import numpy as np

from voxemo.core.errors import ConfigError, VoxemoError
from voxemo.core.parallel import pmap
from voxemo.dsp.scoring import average_windows
from voxemo.inference.adaptset import adaptation_set, analyse_job, why_unused
from voxemo.inference.batch import BatchSummary, open_output
from voxemo.inference.classifier import Classifier
from voxemo.inference.loading import load_model
from voxemo.inference.parquet import ParquetWriter
from voxemo.inference.results import FileFailure, FileResult, NoSpeech
from voxemo.io.discovery import expand_inputs

#: clips scored per call of the network in pass two
SCORE_BATCH = 256


def predict_adapted(paths: Iterable[str | os.PathLike[str]], *, model: str | None = None, backend: str = "auto",
                    fmt: str = "json", output: str | os.PathLike[str] | None = None, jobs: int = 0,
                    out: IO[str] | None = None, progress: bool = False, min_confidence: float = 0.0,
                    prior_seconds: float | None = None, min_seconds: float | None = None) -> BatchSummary:
    """Adapt ``model`` to the speech of ``paths`` and predict them (see the module docstring); arguments as for
    :func:`~voxemo.inference.batch.predict_batch`, plus the adaptation's ``prior_seconds`` and ``min_seconds``.
    Too little speech among the inputs is an :class:`~voxemo.core.errors.AdaptationError` before anything is
    written."""
    if output is not None and fmt == "text":
        raise ConfigError("--output writes JSON lines or CSV: add --json or --csv")
    if not 0.0 <= min_confidence <= 1.0:
        raise ConfigError(f"min_confidence={min_confidence!r} must be between 0 and 1")
    clf = load_model(model, backend=backend)
    items = list(expand_inputs(paths))
    todo = [(p, clf.config, clf.speech) for p, error in items if error is None]
    analysed = iter(pmap(analyse_job, todo, jobs=jobs, desc="read", progress=progress, unit="file"))
    firsts: list[np.ndarray | FileResult] = [FileFailure(p, error) if error else next(analysed) for p, error in items]
    speech = [(p, r) for (p, _), r in zip(items, firsts) if isinstance(r, np.ndarray)]
    unused = [why_unused(r) for r in firsts if isinstance(r, (NoSpeech, FileFailure))]
    aset = adaptation_set([p for p, _ in speech], [s for _, s in speech], clf.config, skipped=unused,
                          min_seconds=min_seconds)
    adapted = clf.adapted(aset, prior_seconds=prior_seconds)
    adapted.min_confidence = min_confidence
    probs = {}
    for i in range(0, len(speech), SCORE_BATCH):
        batch = speech[i : i + SCORE_BATCH]
        scored = average_windows([s for _, s in batch], adapted.config, adapted.calibrated_segment_proba,
                                 len(adapted.classes_))
        probs.update({p: row for (p, _), row in zip(batch, scored)})
    return _write(items, firsts, probs, adapted, fmt, output, out)


def _write(items: list[tuple[str, str | None]], firsts: list[np.ndarray | FileResult], probs: dict[str, np.ndarray],
           clf: Classifier, fmt: str, output: str | os.PathLike[str] | None, out: IO[str] | None) -> BatchSummary:
    summary = BatchSummary()
    writer, _, handle = open_output(clf, fmt, output, False, out or sys.stdout)
    try:
        for (path, _), first in zip(items, firsts):
            try:
                result = (clf.labelled(path, probs[path], clf.min_confidence) if isinstance(first, np.ndarray)
                          else first)
            except VoxemoError as exc:
                result = FileFailure(path, str(exc))
            summary.count(result)
            writer.write(result)
    finally:
        if handle is not None:
            handle.close()
        if isinstance(writer, ParquetWriter):
            writer.close()
    return summary
