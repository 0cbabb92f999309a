"""``voxemo adapt``: a model adapted to a user's own recordings, written as a complete model folder (weights,
``model.onnx``, calibration, config, ``adaptation.json`` and a model card saying what it was adapted on)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from voxemo.core.errors import AdaptationError, ModelError
from voxemo.core.records import Utterance
from voxemo.inference.adaptset import AdaptationRecord
from voxemo.inference.classifier import Classifier
from voxemo.inference.loading import load_model
from voxemo.io.files import atomic_write_text
from voxemo.io.modelfile import ADAPTATION, MODEL_CARD

log = logging.getLogger(__name__)


def save_adapted(clf: Classifier, out: str | os.PathLike[str]) -> Path:
    """Write an adapted classifier (torch or ONNX) as a model folder with ``model.onnx``, ``adaptation.json`` and
    ``MODEL_CARD.md``; every command loads it like any other model."""
    if clf.adaptation is None:
        raise ModelError("only a classifier returned by adapt() can be saved as an adapted model")
    folder = clf.save(out, onnx=True)
    atomic_write_text(folder / ADAPTATION, json.dumps(clf.adaptation.to_dict(), indent=2))
    atomic_write_text(folder / MODEL_CARD, model_card(clf.adaptation, [str(c) for c in clf.classes_]))
    return folder


def model_card(record: AdaptationRecord, classes: Sequence[str]) -> str:
    """The markdown model card of an adapted model, from its ``adaptation.json`` record."""
    if record.labelled:
        return _tuned_card(record, classes)
    layers = record.layers or [[]]
    rows = "\n".join(f"| {s['layer']} | {s['mean_shift']:.3f} | {s['std_ratio']:.3f} |" for s in layers[0])
    earlier = record.previous
    before = (f"\nIt was adapted before, on {earlier.clips} clips ({earlier.date}); this adaptation "
              "started from that model.\n" if earlier else "")
    seconds = record.speech_seconds or 0.0
    return f"""# Adapted voxemo model

Adapted without labels from **{record.base_model}** on {record.date}.

| | |
|---|---|
| clips used | {record.clips} ({record.skipped} skipped: unreadable, no speech or too short) |
| speech | {seconds:.1f} s ({seconds / 3600:.3f} h) |
| list of files (SHA-256 of the paths, one per line) | `{record.list_sha256}` |
| target's share of each statistic | {record.weight or 0.0:.3f} |
| classes | {', '.join(classes)} |
{before}
## What changed

Only normalisation statistics: {_what_moved(record)}, re-measured
on the speech of the clips above (real frames, never padding) and shrunk towards the training statistics; the
weights, labels and softmax temperature are the base model's. Shift of the first member's layers (mean change in
training standard deviations; new/old standard deviation):

| layer | mean shift | std ratio |
|---|---:|---:|
{rows}

## Limits

Adaptation assumes the recordings come from one setting (language, microphone, room, channel) and hold speech.
It changes what the model is sure of; it does not make it right: judge the adapted model on a few labelled clips
of your own (docs/usage.md, "On your own recordings"). The temperature was fitted on the training corpus.
"""


def _what_moved(record: AdaptationRecord) -> str:
    method = record.method
    if method.startswith("standardisation"):
        return f"the standardisation moments (means and variances) {method.removeprefix('standardisation ')}"
    return "every member's input standardisation and batch-norm means and variances"


def adapt_model(inputs: Sequence[str], out: str | os.PathLike[str], *, model: str | None = None,
                backend: str = "auto", labelled: Sequence[Utterance] = (), jobs: int = 0,
                prior_seconds: float | None = None, min_seconds: float | None = None,
                progress: bool = True) -> Classifier:
    """Load ``model`` (default: the shipped one), adapt it without labels to ``inputs`` (:meth:`Classifier.adapt`),
    then fine-tune it on the ``labelled`` clips (:meth:`Classifier.fine_tune`), either step optional, and write the
    adapted model folder ``out``; returns the adapted classifier. The model loaded is never modified, and ``out``
    may not be its folder."""
    if not inputs and not labelled:
        raise AdaptationError("nothing to adapt on: give recordings (AUDIO...), labelled clips (--labelled), or both")
    clf = load_model(model, backend=backend)
    target = Path(out).resolve()
    if clf.model_dir is not None and clf.model_dir.resolve() == target:
        raise ModelError(f"{out}: is the model being adapted; write the adapted model to another folder")
    if inputs:
        log.info("adapting %s: reading the speech of %s", clf.origin(), ", ".join(map(str, inputs[:3]))
                 + (f" and {len(inputs) - 3} more" if len(inputs) > 3 else ""))
        clf = clf.adapt(inputs, jobs=jobs, prior_seconds=prior_seconds, min_seconds=min_seconds, progress=progress)
    if labelled:
        log.info("fine-tuning on %d labelled clips", len(labelled))
        clf = clf.fine_tune([(r.path, r.emotion) for r in labelled], jobs=jobs, progress=progress)
    log.info("writing %s", out)
    save_adapted(clf, out)
    return clf


def _tuned_card(record: AdaptationRecord, classes: Sequence[str]) -> str:
    recipe = record.recipe or {}
    counts = ", ".join(f"{c} {n}" for c, n in (record.per_class or {}).items())
    earlier = record.previous
    before = (f"Before that it was adapted without labels on {earlier.clips} clips "
              f"({(earlier.speech_seconds or 0.0) / 60:.1f} min of speech, {earlier.date}).\n"
              if earlier and not earlier.labelled else "")
    used = f"{record.clips} ({record.skipped} skipped: unreadable, no speech or an emotion the model lacks)"
    how = (f"{recipe['scope']} parameters, {recipe['steps']} steps, learning rate {recipe['lr']:g}, L2 pull to the "
           f"trained weights {recipe['l2sp']:g}") if "steps" in recipe else \
        f"the linear layer refitted (L-BFGS) with an L2 pull to the trained weights, C = {recipe['c']:g}"
    return f"""# Fine-tuned voxemo model

Fine-tuned on labelled clips from **{record.base_model}** on {record.date}.
{before}
| | |
|---|---|
| labelled clips used | {used} |
| per class | {counts} |
| list of files (SHA-256 of the paths, one per line) | `{record.list_sha256}` |
| recipe | {how} |
| classes | {', '.join(classes)} |

## Limits

A few labelled clips teach the model the target's way of expressing the emotions they show; classes without
labelled clips keep what training taught. Judge the model on labelled clips of speakers that were not among these
(`voxemo evaluate --train ... --test ... --shots K` measures exactly that). The temperature was fitted on the
training corpus.
"""
