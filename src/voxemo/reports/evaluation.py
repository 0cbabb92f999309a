"""The report folder of an evaluation: ``metrics.json``, ``predictions.csv``, ``confusion.png``,
``reliability.png`` and ``report.md``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from voxemo.experiment.metrics import breakdown, top_confusions
from voxemo.reports.calibration import calibration_markdown
from voxemo.reports.tables import _md_table, write_rows_csv


def write_evaluation(result: dict[str, Any], out_dir: str | Path) -> Path:
    """Write metrics.json, predictions.csv, confusion.png and report.md for an :func:`evaluate` result."""
    from voxemo.reports.plots import plot_confusion, plot_reliability

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    labels = result["labels"]
    preds = result["predictions"]
    tables = {key: breakdown(preds, key) for key in ("emotion", "intensity", "gender", "speaker")}
    confusions = top_confusions(result["confusion"], labels)
    metrics = {k: v for k, v in result.items() if k != "predictions"}
    metrics.update({"confusion_labels": labels, "per_class": tables["emotion"], "per_intensity": tables["intensity"],
                    "per_gender": tables["gender"], "per_speaker": tables["speaker"], "top_confusions": confusions})
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    write_rows_csv(preds, out / "predictions.csv")
    plot_confusion(np.asarray(result["confusion"]), labels, out / "confusion.png",
                   title=f"{result['protocol']}: summed confusion (row-normalised)")
    cal = result.get("calibration")
    if cal:
        plot_reliability(cal["reliability"], out / "reliability.png",
                         title=f"{result['protocol']}: reliability ({cal['n_bins']} bins)")
    s = result["summary"]
    model = f" ({result['model']})" if result.get("model") else ""
    report = [f"# Evaluation: `{result['protocol']}`{model}\n",
              "Speaker-independent: no actor is in both training and test.\n" if result["protocol"] == "actor-6fold"
              else "Random clip split: the same actors are in training and test, so this overstates accuracy "
                   "on new voices. Shown for comparison only.\n",
              "| metric | mean | std |", "|---|---|---|"]
    report += [f"| {m} | {s[m]['mean']:.3f} | {s[m]['std']:.3f} |" for m in s]
    report += ["\n## Folds\n", _md_table([{k: f[k] for k in ("fold", "n_train", "n_val", "n_test", "best_epoch", "C",
                                                             "accuracy", "uar", "macro_f1") if k in f}
                                           for f in result["folds"]])]
    if cal:
        report += calibration_markdown(cal, [f["fold"] for f in result["folds"]])
    report += ["## Per class (recall)\n", _md_table(tables["emotion"]), "## Per intensity\n",
               _md_table(tables["intensity"]), "## Per gender\n", _md_table(tables["gender"]),
               "## Most frequent confusions\n", _md_table(confusions), "![confusion](confusion.png)\n"]
    (out / "report.md").write_text("\n".join(report))
    return out
