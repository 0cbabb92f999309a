"""The report folder of a cross-corpus evaluation: ``metrics.json``, ``predictions.csv``, ``confusion.png`` and
``report.md``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from voxemo.experiment.metrics import breakdown, top_confusions
from voxemo.reports.tables import _md_table, write_rows_csv


def write_cross_corpus(result: dict[str, Any], out_dir: str | Path) -> Path:
    """Write metrics.json, predictions.csv, confusion.png and report.md for a :func:`cross_corpus` result."""
    from voxemo.reports.plots import plot_confusion

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    preds = result["predictions"]
    tables = {key: breakdown(preds, key) for key in ("gender", "speaker")}
    confusions = top_confusions(result["confusion"], result["labels"])
    metrics = {k: v for k, v in result.items() if k != "predictions"}
    metrics.update({"confusion_labels": result["labels"], "per_gender": tables["gender"],
                    "per_speaker": tables["speaker"], "top_confusions": confusions})
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    write_rows_csv(preds, out / "predictions.csv")
    arrow = f"{' + '.join(result['train'])} → {' + '.join(result['test'])}"
    plot_confusion(np.asarray(result["confusion"]), result["labels"], out / "confusion.png",
                   title=f"{arrow} (row-normalised)")
    rows = [{"classes": f"{len(result['labels'])} shared", "n": result["n"], "accuracy": result["accuracy"],
             "uar": result["uar"], "macro_f1": result["macro_f1"]}]
    four = result["four_class"]
    if four:
        rows.append({"classes": "angry/happy/neutral/sad", "n": four["n"], "accuracy": four["accuracy"],
                     "uar": four["uar"], "macro_f1": four["macro_f1"]})
    excluded = ", ".join(f"{k} {v}" for k, v in result["excluded"].items()) or "none"
    report = [f"# Cross-corpus evaluation: {arrow}\n",
              f"One model trained on {sum(result['train'].values())} clips ({', '.join(result['train'])}) for "
              f"{result['epochs']} epochs, classes {', '.join(result['model_labels'])}; tested on "
              f"{sum(result['test'].values())} clips ({', '.join(result['test'])}). Calm is folded into neutral; "
              f"only the shared classes ({', '.join(result['labels'])}) are scored, each clip predicted as its "
              f"most probable shared class. Test clips left out: {excluded}.\n",
              _md_table(rows), "## Per class (recall)\n", _md_table(result["per_class"])]
    if four:
        report += ["## Per class, angry/happy/neutral/sad (recall)\n", _md_table(four["per_class"])]
    report += ["## Per gender\n", _md_table(tables["gender"]), "## Most frequent confusions\n",
               _md_table(confusions), "![confusion](confusion.png)\n"]
    (out / "report.md").write_text("\n".join(report))
    return out
