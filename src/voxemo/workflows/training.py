"""Training a model folder from corpora, as ``voxemo train`` does, and the softmax temperature taken from an
evaluation of the same recipe.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from voxemo.core.config import Config
from voxemo.core.errors import ConfigError
from voxemo.core.records import Utterance
from voxemo.experiment.dataset import load_augmented, load_features
from voxemo.experiment.multicorpus import model_labels
from voxemo.experiment.probe import train_probe
from voxemo.experiment.training import apply_choice, compare_variants, train_final
from voxemo.inference.encoders import ENCODERS, encoder_reference
from voxemo.inference.loading import model_path
from voxemo.inference.probe_backend import ProbeClassifier
from voxemo.nn.probe import FAMILIES, family

#: config fields that may differ between an evaluation and the model it calibrates: they change how a run is
#: scheduled or which variant won, not the recipe
_RECIPE_EXEMPT = {("model", "bias_init"), ("train", "seed"), ("train", "epochs")}


def calibration_from_evaluation(path: str | Path, config: Config) -> dict[str, Any]:
    """The softmax temperature cross-fitted by a ``voxemo evaluate`` run of the same recipe (its ``metrics.json``):
    fitted on every clip's out-of-fold prediction, from speakers its models never heard, instead of on the few
    validation speakers of :func:`compare_variants`.

    Raises
    ------
    ConfigError
        The folder holds no evaluation with a temperature, or its recipe differs from ``config`` (other than in
        seed, epochs or the output-bias variant).
    """
    d = Path(path)
    try:
        metrics = json.loads((d / "metrics.json").read_text())
        cal, theirs = metrics["calibration"], Config.from_dict(metrics["config"]).to_dict()
        temperature = float(cal["temperature"])
    except OSError as exc:
        raise ConfigError(f"{d}: no evaluation there ({exc.strerror or exc}: metrics.json)") from None
    except (ValueError, KeyError, TypeError, ConfigError) as exc:
        raise ConfigError(f"{d}: metrics.json holds no evaluation with a fitted temperature ({exc})") from None
    ours = config.to_dict()
    differ = [f"{sec}.{k}" for sec in ours for k in ours[sec]
              if (sec, k) not in _RECIPE_EXEMPT and ours[sec][k] != theirs[sec].get(k)]
    if differ:
        raise ConfigError(f"{d}: evaluated another recipe (differs in {', '.join(differ)}); its temperature does "
                          "not apply")
    n = sum(int(f.get("n_test", 0)) for f in metrics.get("folds", []))
    return {"temperature": temperature, "n": n, **cal.get("pooled", {}),
            "fitted_on": f"out-of-fold predictions of {n} clips in {d} ({metrics.get('protocol')}, cross-fitted)"}


@dataclass(frozen=True)
class TrainingSummary:
    """What :func:`train_recipe` did: the variant chosen, the epochs retrained, the clips and classes used."""

    out: Path
    chosen: str
    epochs: int
    n_clips: int
    corpora: dict[str, int]
    labels: tuple[str, ...]
    skipped: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "chosen": self.chosen, "epochs": self.epochs, "n_clips": self.n_clips,
                "corpora": dict(self.corpora), "labels": list(self.labels), "skipped": list(self.skipped)}


def train_recipe(records: Sequence[Utterance], config: Config, out: str | Path, *,
                 calibration_from: str | Path | None = None, jobs: int = 0, threads: int = 1,
                 progress: bool = True, onnx: bool | str = True) -> TrainingSummary:
    """Train the recipe on ``records`` and write a complete model folder (with ``model.onnx``) to ``out``.

    Both output-bias variants are trained on all but the validation speakers; the one with the lower best
    validation loss is retrained on every clip for its best epoch count. The softmax temperature comes from the
    validation speakers, or, with ``calibration_from``, from a ``voxemo evaluate`` folder of the same recipe
    (checked before any training, so a mismatch fails at once). ``onnx="only"`` stores the network once, as
    ``model.onnx`` (as the shipped folders do; :meth:`~voxemo.inference.torch_backend.EmotionClassifier.save`).
    """
    if config.model.arch in FAMILIES:
        if calibration_from:
            raise ConfigError(f"--calibration-from takes a CNN evaluation's temperature; a {config.model.arch} model "
                              "fits its own on speaker-held-out logits")
        return train_encoder_model(records, config, out, jobs=jobs, threads=threads, progress=progress)
    calibration = calibration_from_evaluation(calibration_from, config) if calibration_from else None
    records, specs, errors = load_features(records, config, jobs=jobs, progress=progress)
    labels = model_labels(records)
    aug = load_augmented(records, config, jobs=jobs, progress=progress)
    variants = compare_variants(records, specs, config, labels=labels, aug_specs=aug, threads=threads,
                                progress=progress)
    config, epochs = apply_choice(config, variants)
    if calibration:
        variants = replace(variants, calibration=calibration, calibration_validation=variants.calibration)
    clf = train_final(records, specs, config, epochs, labels=labels, aug_specs=aug, threads=threads,
                      progress=progress,
                      calibration=variants.calibration)
    corpora = dict(sorted(Counter(r.corpus for r in records).items()))
    clf.save(out, report={"variants": variants.to_dict(), "final_epochs": epochs, "n_clips": len(records),
                          "corpora": corpora, "labels": list(labels), "skipped": errors, "config": config.to_dict()},
             onnx=onnx)
    return TrainingSummary(Path(out), variants.chosen, epochs, len(records), corpora, tuple(labels), tuple(errors))


def train_encoder_model(records: Sequence[Utterance], config: Config, out: str | Path, *, jobs: int = 0,
                        threads: int = 1, progress: bool = True) -> TrainingSummary:
    """Train a model folder of an encoder family (``config.model.arch``; :func:`voxemo.experiment.probe.train_probe`):
    the family's shipped encoder's features of every clip, a linear head over them, its temperature from
    speaker-held-out logits. The folder refers to the encoder (``encoder.json``), never copies it."""

    encoder = family(config.model.arch).encoder
    trained = train_probe(records, config, jobs=jobs, threads=threads, progress=progress)
    clf = ProbeClassifier(trained.head, config, trained.labels, encoder_reference(encoder),
                          encoder_path=ENCODERS[encoder].path(), threads=threads)
    clf.temperature, clf.calibration = trained.temperature, dict(trained.calibration)
    corpora = dict(sorted(Counter(r.corpus for r in trained.records).items()))
    speakers = {name: len({r.speaker for r in trained.records if r.corpus == name}) for name in corpora}
    clf.save(out, report={"head": "linear probe", "n_clips": len(trained.records), "corpora": corpora,
                          "speakers": speakers, "labels": list(trained.labels), "skipped": list(trained.errors),
                          "encoder": encoder_reference(encoder), "config": config.to_dict()})
    return TrainingSummary(Path(out), "linear probe", 0, len(trained.records), corpora, trained.labels,
                           trained.errors)


def train_like(records: Sequence[Utterance], like: str | Path, config: Config, out: str | Path, *,
               epochs: int | None = None, jobs: int = 0, threads: int = 1, progress: bool = True,
               onnx: bool | str = True) -> TrainingSummary:
    """Repeat a trained CNN's recipe with changes: ``config`` (``like``'s own with the changes, e.g. telephone
    copies) trained on ``records`` for ``like``'s epoch count (or ``epochs``), its output-bias variant kept and its
    softmax temperature copied (recorded as such in ``calibration.json``), nothing chosen again: the new model
    differs from ``like`` only in the changes. How the shipped ``telephone`` model repeats ``fast``."""

    folder = model_path(str(like))
    try:
        report = json.loads((folder / "training.json").read_text())
        epochs = epochs or int(report["final_epochs"])
        temperature = json.loads((folder / "calibration.json").read_text())["temperature"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{folder}: not a trained CNN folder to repeat (training.json with final_epochs and "
                          f"calibration.json needed: {exc})") from None
    records, specs, errors = load_features(records, config, jobs=jobs, progress=progress)
    labels = model_labels(records)
    aug = load_augmented(records, config, jobs=jobs, progress=progress)
    calibration = {"temperature": float(temperature), "fitted_on": f"copied from {like} (the same recipe but the "
                   "changes in config.json; not refitted)"}
    clf = train_final(records, specs, config, epochs, labels=labels, aug_specs=aug, threads=threads,
                      progress=progress, calibration=calibration)
    corpora = dict(sorted(Counter(r.corpus for r in records).items()))
    clf.save(out, report={"like": str(like), "final_epochs": epochs, "n_clips": len(records), "corpora": corpora,
                          "labels": list(labels), "skipped": errors, "config": config.to_dict()}, onnx=onnx)
    return TrainingSummary(Path(out), f"the recipe of {like}", epochs, len(records), corpora, tuple(labels),
                           tuple(errors))
