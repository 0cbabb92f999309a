"""The whole study in one call: analysis, the two CNN variants, the choice, speaker-independent evaluation,
on request the leaking random split for contrast, the final model on all data, and a report."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from voxemo.core.config import Config
from voxemo.core.records import Utterance
from voxemo.experiment.dataset import load_augmented, load_features
from voxemo.experiment.evaluate import evaluate
from voxemo.experiment.multicorpus import model_labels
from voxemo.experiment.results import Evaluation, StudySummary
from voxemo.experiment.training import apply_choice, compare_variants, train_final
from voxemo.io.manifest import write_manifest
from voxemo.reports.evaluation import write_evaluation
from voxemo.reports.study import study_report

log = logging.getLogger(__name__)


def run_study(records: Sequence[Utterance], out_dir: str | Path, config: Config, *, analyze_audio: bool = True,
              random_protocol: bool = False, cache_dir: str | None = None, jobs: int = 0, threads: int = 1,
              progress: bool = True) -> StudySummary:
    """Run the whole study and write everything under ``out_dir``:

    ``analysis/`` (audio analysis and the chosen trim threshold / segment length), ``variants.json``,
    ``eval-actor-6fold/``, ``eval-random/`` (with ``random_protocol``), ``model/`` (the final model) and
    ``report.md``. Returns the summary (``summary.json`` is its :meth:`~StudySummary.to_dict`).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    write_manifest(records, out / "manifest.jsonl")
    recommended = None
    if analyze_audio:
        from voxemo.workflows.analysis import analyze

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
    variants = compare_variants(records, specs, config, labels=labels, aug_specs=aug_specs, threads=threads,
                                progress=progress)
    (out / "variants.json").write_text(json.dumps(variants.to_dict(), indent=2))
    config, epochs = apply_choice(config, variants)
    timings["variants"] = time.perf_counter() - t

    evaluations: dict[str, Evaluation] = {}
    for protocol in ("actor-6fold", "random") if random_protocol else ("actor-6fold",):
        t = time.perf_counter()
        log.info("evaluating with protocol %s", protocol)
        result = evaluate(records, specs, config, protocol, labels=labels, aug_specs=aug_specs, threads=threads,
                          progress=progress)
        write_evaluation(result, out / f"eval-{protocol}")
        evaluations[protocol] = result
        timings[f"eval-{protocol}"] = time.perf_counter() - t

    t = time.perf_counter()
    log.info("training the final model on all %d clips for %d epochs", len(records), epochs)
    clf = train_final(records, specs, config, epochs, labels=labels, aug_specs=aug_specs, threads=threads,
                      progress=progress,
                      calibration=variants.calibration)
    timings["final"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    report = StudySummary(n_clips=len(records), n_speakers=len({r.speaker for r in records}), skipped=tuple(errors),
                          recommended=recommended, variants=variants, final_epochs=epochs, evaluations=evaluations,
                          timings_s=timings, config=config)
    summary_json = report.to_dict()
    clf.save(out / "model", report=summary_json, onnx=True)
    (out / "summary.json").write_text(json.dumps(summary_json, indent=2))
    (out / "report.md").write_text(study_report(report))
    return report
