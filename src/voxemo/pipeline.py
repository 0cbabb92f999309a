"""The whole study in one call: analysis, the two CNN variants, the choice, speaker-independent evaluation,
on request the leaking random split for contrast, the final model on all data, and a report."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .cache import extract_augmented, extract_many
from .calibration import holdout_fit, window_logits
from .config import Config
from .errors import ConfigError, CorpusError
from .evaluate import evaluate, fit_and_test, write_evaluation
from .labels import EMOTIONS
from .multicorpus import corpus_weights, model_labels, unique_speakers, validation_speakers
from .parallel import pmap, split_cores
from .predict import EmotionClassifier
from .records import Utterance, write_manifest
from .train import train_model

log = logging.getLogger(__name__)


def load_features(records: Sequence[Utterance], config: Config, *, cache_dir: str | None = None, jobs: int = 0,
                  progress: bool = True) -> tuple[list[Utterance], list[np.ndarray], list[str]]:
    """Features of every record; records whose audio fails are dropped and their errors returned."""
    results = extract_many([r.path for r in records], config.audio, config.features, cache_dir=cache_dir, jobs=jobs,
                           progress=progress)
    kept, specs, errors = [], [], []
    for r, res in zip(records, results):
        if isinstance(res, str):
            errors.append(res)
        else:
            kept.append(r)
            specs.append(res)
    for e in errors:
        log.warning("skipped: %s", e)
    if not kept:
        raise CorpusError("no usable clips: every file failed to load (see the messages above)")
    return kept, specs, errors


def load_augmented(records: Sequence[Utterance], config: Config, *, cache_dir: str | None = None, jobs: int = 0,
                   progress: bool = True) -> list[list[np.ndarray]] | None:
    """``config.augment.copies`` augmented feature copies per record for training, or None when augmentation is
    off. A record whose copies fail (it loaded once already, so this is rare) trains on its original only."""
    if not config.augment.copies:
        return None
    results = extract_augmented([r.path for r in records], config.audio, config.features, config.augment,
                                cache_dir=cache_dir, jobs=jobs, progress=progress)
    for res in results:
        if isinstance(res, str):
            log.warning("augmentation skipped: %s", res)
    return [[] if isinstance(res, str) else res for res in results]


def compare_variants(records: Sequence[Utterance], specs: Sequence[np.ndarray], config: Config, *,
                     labels: Sequence[str] = EMOTIONS, aug_specs: Sequence[Sequence[np.ndarray]] | None = None,
                     jobs: int = 0, progress: bool = True) -> dict[str, Any]:
    """Train the CNN with and without output-bias initialisation on the same actor split and compare first-epoch
    and best validation loss/accuracy. The better variant has the lower best validation loss. Both train side by
    side in ``jobs`` processes (0 = one per core).

    With several corpora (:attr:`Utterance.corpus`), speakers are made unique per corpus, validation speakers
    come from every corpus (:func:`~voxemo.multicorpus.validation_speakers`) and training samples each corpus
    equally (:func:`~voxemo.multicorpus.corpus_weights`)."""
    labels = list(labels)
    records = unique_speakers(records)
    val_spk = validation_speakers(records, config.train.val_actors, config.train.seed)
    if not val_spk:
        raise CorpusError(f"training needs speakers to hold out for validation, but every corpus has only one "
                          f"({', '.join(sorted({r.speaker for r in records}))})")
    is_val = np.array([r.speaker in val_spk for r in records])
    y = np.array([labels.index(r.emotion) for r in records])
    take = lambda mask: [s for s, m in zip(specs, mask) if m]  # noqa: E731
    train_aug = [a for a, m in zip(aug_specs, ~is_val) if m] if aug_specs else None
    weights = corpus_weights(records)
    train_w = weights[~is_val] if weights is not None else None
    work = []
    for bias_init in (True, False):
        cfg = config.replace(model=config.model.replace(bias_init=bias_init))
        work.append(("bias_init" if bias_init else "no_bias_init", take(~is_val), y[~is_val], take(is_val), y[is_val],
                     take(is_val), y[is_val], len(labels), cfg, train_aug, train_w,
                     [r.speaker for r, m in zip(records, ~is_val) if m]))
    workers, threads = split_cores(len(work), jobs)
    if not config.train.threads:
        work = [(*w[:8], w[8].replace(train=w[8].train.replace(threads=threads)), *w[9:]) for w in work]
    outcomes = pmap(fit_and_test, work, jobs=workers, desc="variants", progress=progress, chunksize=1,
                    unit="variant", start_method="spawn")
    variants, window_probs = {}, {}
    for job, (fold, _) in zip(work, outcomes):
        window_probs[job[0]] = fold.pop("window_probs")
        history = fold["history"]
        first, best = history[0], history[fold["best_epoch"] - 1]
        variants[job[0]] = {
            "bias_init": job[8].model.bias_init, "first_epoch_val_loss": first["val_loss"],
            "first_epoch_val_accuracy": first["val_accuracy"], "best_epoch": fold["best_epoch"],
            "best_val_loss": best["val_loss"], "best_val_accuracy": best["val_accuracy"], "history": history,
        }
    chosen = min(variants, key=lambda k: (variants[k]["best_val_loss"], -variants[k]["best_val_accuracy"]))
    # The final model's softmax temperature: fitted on the chosen variant's predictions for the held-out validation
    # speakers (the same clips chose its best epoch, so T is fitted on slightly optimistic predictions).
    calibration = {**holdout_fit(window_logits(window_probs[chosen]), y[is_val]),
                   "fitted_on": f"validation speakers {', '.join(val_spk)} ({chosen} variant, best epoch)"}
    return {"val_speakers": val_spk, "variants": variants, "chosen": chosen,
            "bias_init": variants[chosen]["bias_init"], "calibration": calibration}


#: config fields that may differ between an evaluation and the model it calibrates: they change how a run is
#: scheduled or which variant won, not the recipe
_RECIPE_EXEMPT = {("model", "bias_init"), ("train", "seed"), ("train", "threads"), ("train", "epochs")}


def calibration_from_evaluation(path: str | Path, config: Config) -> dict[str, Any]:
    """The softmax temperature cross-fitted by a ``voxemo evaluate`` run of the same recipe (its ``metrics.json``):
    fitted on every clip's out-of-fold prediction, from speakers its models never heard, instead of on the few
    validation speakers of :func:`compare_variants`.

    Raises
    ------
    ConfigError
        The folder holds no evaluation with a temperature, or its recipe differs from ``config`` (other than in
        seed, threads, epochs or the output-bias variant).
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


def apply_choice(config: Config, variants: dict[str, Any]) -> tuple[Config, int]:
    """The config with the chosen variant's output-bias setting, and that variant's best validation epoch: the
    epoch count for retraining on all clips."""
    chosen = variants["variants"][variants["chosen"]]
    return config.replace(model=config.model.replace(bias_init=chosen["bias_init"])), int(chosen["best_epoch"])


def train_final(records: Sequence[Utterance], specs: Sequence[np.ndarray], config: Config, epochs: int, *,
                labels: Sequence[str] = EMOTIONS, aug_specs: Sequence[Sequence[np.ndarray]] | None = None,
                progress: bool = True, calibration: dict[str, Any] | None = None) -> EmotionClassifier:
    """Retrain on every clip for a fixed number of epochs (the best epoch found on held-out actors); several
    corpora are sampled equally (:func:`~voxemo.multicorpus.corpus_weights`). ``calibration`` (from
    :func:`compare_variants`) gives the model its softmax temperature, saved as ``calibration.json``."""
    labels = list(labels)
    y = np.array([labels.index(r.emotion) for r in records])
    res = train_model(specs, y, len(labels), config, epochs=epochs, aug_specs=aug_specs,
                      weights=corpus_weights(records), speakers=[r.speaker for r in unique_speakers(records)],
                      progress=progress, desc="final")
    clf = EmotionClassifier(res.model, config, labels)
    if calibration:
        clf.temperature, clf.calibration = float(calibration["temperature"]), dict(calibration)
    return clf


def run_study(records: Sequence[Utterance], out_dir: str | Path, config: Config, *, analyze_audio: bool = True,
              random_protocol: bool = False, cache_dir: str | None = None, jobs: int = 0,
              progress: bool = True) -> dict[str, Any]:
    """Run the whole study and write everything under ``out_dir``:

    ``analysis/`` (audio analysis and the chosen trim threshold / segment length), ``variants.json``,
    ``eval-actor-6fold/``, ``eval-random/`` (with ``random_protocol``), ``model/`` (the final model) and
    ``report.md``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    write_manifest(records, out / "manifest.jsonl")
    recommended = None
    if analyze_audio:
        from .analysis import analyze

        log.info("analysing %d clips", len(records))
        summary = analyze(records, out / "analysis", audio=config.audio, jobs=jobs, progress=progress)
        recommended = summary["recommended"]
        config = config.replace(audio=config.audio.replace(top_db=float(recommended["top_db"]),
                                                           duration=float(recommended["duration"])))
        timings["analysis"] = time.perf_counter() - t0
    t = time.perf_counter()
    records, specs, errors = load_features(records, config, cache_dir=cache_dir, jobs=jobs, progress=progress)
    aug_specs = load_augmented(records, config, cache_dir=cache_dir, jobs=jobs, progress=progress)
    labels = model_labels(records)
    timings["features"] = time.perf_counter() - t

    t = time.perf_counter()
    log.info("comparing output-bias initialisation variants")
    variants = compare_variants(records, specs, config, labels=labels, aug_specs=aug_specs, progress=progress)
    (out / "variants.json").write_text(json.dumps(variants, indent=2))
    config, epochs = apply_choice(config, variants)
    timings["variants"] = time.perf_counter() - t

    evaluations = {}
    for protocol in ("actor-6fold", "random") if random_protocol else ("actor-6fold",):
        t = time.perf_counter()
        log.info("evaluating with protocol %s", protocol)
        result = evaluate(records, specs, config, protocol, labels=labels, aug_specs=aug_specs, progress=progress)
        write_evaluation(result, out / f"eval-{protocol}")
        evaluations[protocol] = result
        timings[f"eval-{protocol}"] = time.perf_counter() - t

    t = time.perf_counter()
    log.info("training the final model on all %d clips for %d epochs", len(records), epochs)
    clf = train_final(records, specs, config, epochs, labels=labels, aug_specs=aug_specs, progress=progress,
                      calibration=variants["calibration"])
    timings["final"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    report = {
        "n_clips": len(records), "n_speakers": len({r.speaker for r in records}), "skipped": errors,
        "recommended": recommended, "variants": {k: {kk: vv for kk, vv in v.items() if kk != "history"}
                                                 for k, v in variants["variants"].items()},
        "chosen_variant": variants["chosen"], "final_epochs": epochs, "calibration": variants["calibration"],
        "evaluation": {p: {"summary": r["summary"], "pooled": r["pooled"]} for p, r in evaluations.items()},
        "timings_s": timings, "config": config.to_dict(),
    }
    clf.save(out / "model", report=report, onnx=True)
    (out / "summary.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(study_report(report))
    return report


def study_report(report: dict[str, Any]) -> str:
    """The top-level report.md of a study run."""
    ev = report["evaluation"]
    lines = ["# voxemo study report\n", f"{report['n_clips']} clips, {report['n_speakers']} speakers"
             + (f", {len(report['skipped'])} skipped" if report["skipped"] else "") + ".\n"]
    if report["recommended"]:
        rec = report["recommended"]
        lines.append(f"Analysis (see [analysis/report.md](analysis/report.md)): trim at top_db={rec['top_db']}, "
                     f"segment length {rec['duration']} s. Rule: {rec['rule']}\n")
    lines += ["## Output-bias initialisation\n", "| variant | first-epoch val loss | first-epoch val acc | "
              "best val loss | best val acc | best epoch |", "|---|---|---|---|---|---|"]
    for name, v in report["variants"].items():
        lines.append(f"| {name} | {v['first_epoch_val_loss']:.3f} | {v['first_epoch_val_accuracy']:.3f} | "
                     f"{v['best_val_loss']:.3f} | {v['best_val_accuracy']:.3f} | {v['best_epoch']} |")
    lines += [f"\nChosen: **{report['chosen_variant']}** (lower best validation loss).\n", "## Evaluation\n",
              "| protocol | accuracy | UAR | macro-F1 |", "|---|---|---|---|"]
    for p, r in ev.items():
        s = r["summary"]
        lines.append(f"| {p} | {s['accuracy']['mean']:.3f} ± {s['accuracy']['std']:.3f} | "
                     f"{s['uar']['mean']:.3f} ± {s['uar']['std']:.3f} | "
                     f"{s['macro_f1']['mean']:.3f} ± {s['macro_f1']['std']:.3f} |")
    lines += ["\n`actor-6fold` is speaker-independent: each fold trains on 20 actors for the recipe's "
              f"{report['config']['train']['epochs']} epochs and tests on the 4 others; `random` lets actors leak "
              "between training and test.\n",
              f"Final model: the chosen variant retrained on all clips for its best validation epoch "
              f"({report['final_epochs']}), saved in [model/](model/).\n",
              *_calibration_lines(report.get("calibration")),
              "## Timings (s)\n", "| step | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in report["timings_s"].items()]
    return "\n".join(lines) + "\n"


def _calibration_lines(cal: dict[str, Any] | None) -> list[str]:
    if not cal:
        return []
    b, a = cal["before"], cal["after"]
    return [f"Softmax temperature T = {cal['temperature']:.3f}, fitted on {cal['fitted_on']}: there ECE "
            f"{b['ece']:.3f} -> {a['ece']:.3f}, NLL {b['nll']:.3f} -> {a['nll']:.3f} (model/calibration.json).\n"]
