"""``voxemo predict --adapt``: adapt the model to this run's own inputs, then predict them, reading each file once.

Pass one decodes every input in worker processes and keeps what prediction needs (the log-mel of its speech, or
why it has none); the model is adapted on the speech found (:meth:`~voxemo.inference.classifier.Classifier.adapted`);
pass two scores the kept log-mels with the adapted model, in this process, and writes the results in input order
with the same writer as :func:`~voxemo.inference.batch.predict_batch`. The log-mels of all inputs are held in
memory (about 33 kB per 3 s of speech): for an archive, adapt once on a sample (``voxemo adapt``) and predict with
that model instead.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import IO

import numpy as np

from voxemo.core.errors import AdaptationError, ConfigError, VoxemoError
from voxemo.core.parallel import pmap
from voxemo.dsp.scoring import average_windows
from voxemo.inference.adaptset import adaptation_set, analyse_job, why_unused
from voxemo.inference.batch import BatchSummary
from voxemo.inference.classifier import Classifier
from voxemo.inference.loading import load_model
from voxemo.inference.output import open_output
from voxemo.inference.parquet import ParquetWriter
from voxemo.inference.results import FileFailure, FileResult, NoSpeech
from voxemo.io.discovery import expand_inputs
from voxemo.io.manifest import MANIFEST_EXTENSIONS, manifest_column

log = logging.getLogger(__name__)

#: clips scored per call of the network in pass two
SCORE_BATCH = 256


def predict_adapted(paths: Iterable[str | os.PathLike[str]], *, model: str | None = None, backend: str = "auto",
                    fmt: str = "json", output: str | os.PathLike[str] | None = None, jobs: int = 0,
                    out: IO[str] | None = None, progress: bool = False, min_confidence: float = 0.0,
                    prior_seconds: float | None = None, min_seconds: float | None = None,
                    by: str | None = None) -> BatchSummary:
    """Adapt ``model`` to the speech of ``paths`` and predict them (see the module docstring); arguments as for
    :func:`~voxemo.inference.batch.predict_batch`, plus the adaptation's ``prior_seconds`` and ``min_seconds``.
    Too little speech among the inputs is an :class:`~voxemo.core.errors.AdaptationError` before anything is
    written.

    ``by`` (e.g. ``"speaker"``) adapts a copy of the model to each group of inputs sharing that column's value in the
    manifests given: one voice, one room at a time. A group with less speech than ``min_seconds``, and an input
    with no value, get the model adapted on all the inputs; a warning names the groups that did."""
    if output is not None and fmt == "text":
        raise ConfigError("--output writes JSON lines or CSV: add --json or --csv")
    if not 0.0 <= min_confidence <= 1.0:
        raise ConfigError(f"min_confidence={min_confidence!r} must be between 0 and 1")
    clf = load_model(model, backend=backend)
    paths = list(paths)
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
    groups = _groups(paths, speech, by) if by else {}
    probs = _score([(p, s) for p, s in speech if p not in groups], adapted)
    pooled = []
    for key in sorted(set(groups.values())):
        members = [(p, s) for p, s in speech if groups.get(p) == key]
        try:
            own = clf.adapted(adaptation_set([p for p, _ in members], [s for _, s in members], clf.config,
                                             min_seconds=min_seconds), prior_seconds=prior_seconds)
        except AdaptationError:
            own = adapted
            pooled.append(key)
        probs.update(_score(members, own))
    if pooled:
        log.warning("%s %s: too little speech of their own; adapted on all the inputs instead", by,
                    ", ".join(pooled[:10]) + (f" and {len(pooled) - 10} more" if len(pooled) > 10 else ""))
    return _write(items, firsts, probs, adapted, fmt, output, out)


def _score(speech: list[tuple[str, np.ndarray]], clf: Classifier) -> dict[str, np.ndarray]:
    """Clip probabilities of ``(path, log-mel)`` pairs with ``clf``, :data:`SCORE_BATCH` clips per call."""
    probs = {}
    for i in range(0, len(speech), SCORE_BATCH):
        batch = speech[i : i + SCORE_BATCH]
        scored = average_windows([s for _, s in batch], clf.config, clf.calibrated_segment_proba, len(clf.classes_))
        probs.update({p: row for (p, _), row in zip(batch, scored)})
    return probs


def _groups(paths: Iterable[str | os.PathLike[str]], speech: list[tuple[str, np.ndarray]], by: str) -> dict[str, str]:
    """``{path: group}`` for the inputs with speech, from the ``by`` column of the manifests among ``paths``.

    Raises
    ------
    ConfigError
        No manifest among the inputs gives ``by`` for any of them.
    """
    values: dict[str, str] = {}
    for raw in paths:
        if Path(raw).suffix.lower() in MANIFEST_EXTENSIONS:
            values.update(manifest_column(raw, by))
    found = {p: values[p] for p, _ in speech if p in values}
    if not found:
        raise ConfigError(f"--adapt-by {by}: no input has a {by}; give manifests (.csv or .jsonl) with a {by!r} column")
    return found


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
