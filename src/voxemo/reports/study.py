"""The top-level ``report.md`` of a study run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from voxemo.experiment.results import StudySummary


def headline(summary: Mapping[str, Any]) -> str:
    """The main job's result in one line, from ``summary.json`` (:meth:`StudySummary.to_dict`): what ``voxemo run``
    prints, what README states, and what CI compares the two by.

    >>> headline({"evaluation": {"actor-6fold": {"summary": {"accuracy": {"mean": 0.6875, "std": 0.0626},
    ...           "uar": {"mean": 0.681}}}}, "chosen_variant": "bias_init", "final_epochs": 46,
    ...           "calibration": {"temperature": 0.8003}})
    'actor-6fold accuracy 0.688 ± 0.063, UAR 0.681; chose bias_init, 46 epochs, T = 0.80'
    """
    s = summary["evaluation"]["actor-6fold"]["summary"]
    return (f"actor-6fold accuracy {s['accuracy']['mean']:.3f} ± {s['accuracy']['std']:.3f}, "
            f"UAR {s['uar']['mean']:.3f}; chose {summary['chosen_variant']}, {summary['final_epochs']} epochs, "
            f"T = {summary['calibration']['temperature']:.2f}")


def study_report(report: StudySummary) -> str:
    """The top-level report.md of a study run."""
    lines = ["# voxemo study report\n", f"{report.n_clips} clips, {report.n_speakers} speakers"
             + (f", {len(report.skipped)} skipped" if report.skipped else "") + ".\n"]
    if report.recommended:
        rec = report.recommended
        lines.append(f"Analysis (see [analysis/report.md](analysis/report.md)): trim at top_db={rec['top_db']}, "
                     f"segment length {rec['duration']} s. Rule: {rec['rule']}\n")
    lines += ["## Output-bias initialisation\n", "| variant | first-epoch val loss | first-epoch val acc | "
              "best val loss | best val acc | best epoch |", "|---|---|---|---|---|---|"]
    for name, v in report.variants.variants.items():
        lines.append(f"| {name} | {v.first_epoch_val_loss:.3f} | {v.first_epoch_val_accuracy:.3f} | "
                     f"{v.best_val_loss:.3f} | {v.best_val_accuracy:.3f} | {v.best_epoch} |")
    lines += [f"\nChosen: **{report.variants.chosen}** (lower best validation loss).\n", "## Evaluation\n",
              "| protocol | accuracy | UAR | macro-F1 |", "|---|---|---|---|"]
    for p, r in report.evaluations.items():
        s = r.summary
        lines.append(f"| {p} | {s.accuracy.mean:.3f} ± {s.accuracy.std:.3f} | "
                     f"{s.uar.mean:.3f} ± {s.uar.std:.3f} | "
                     f"{s.macro_f1.mean:.3f} ± {s.macro_f1.std:.3f} |")
    lines += ["\n`actor-6fold` is speaker-independent: each fold trains on 20 actors for the recipe's "
              f"{report.config.train.epochs} epochs and tests on the 4 others; `random` lets actors leak "
              "between training and test.\n",
              f"Final model: the chosen variant retrained on all clips for its best validation epoch "
              f"({report.final_epochs}), saved in [model/](model/).\n",
              *_calibration_lines(report.variants.calibration),
              "## Timings (s)\n", "| step | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in report.timings_s.items()]
    return "\n".join(lines) + "\n"


def _calibration_lines(cal: Mapping[str, Any] | None) -> list[str]:
    if not cal:
        return []
    b, a = cal["before"], cal["after"]
    return [f"Softmax temperature T = {cal['temperature']:.3f}, fitted on {cal['fitted_on']}: there ECE "
            f"{b['ece']:.3f} -> {a['ece']:.3f}, NLL {b['nll']:.3f} -> {a['nll']:.3f} (model/calibration.json).\n"]
