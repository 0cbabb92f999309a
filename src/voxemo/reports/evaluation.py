"""The report folder of an evaluation: ``metrics.json``, ``predictions.csv``, ``confusion.png``,
``reliability.png`` and ``report.md``.
"""

from __future__ import annotations

import json
from pathlib import Path

from voxemo.experiment.results import Evaluation
from voxemo.experiment.splits import SPEAKER_FOLDS
from voxemo.reports.calibration import calibration_markdown
from voxemo.reports.tables import _md_table, write_rows_csv

#: the fold table's columns, those a fold has (the CNN's best epoch or the SVM's C)
_FOLD_COLUMNS = ("fold", "n_train", "n_val", "n_test", "best_epoch", "C", "accuracy", "uar", "macro_f1")


def write_evaluation(result: Evaluation, out_dir: str | Path) -> Path:
    """Write metrics.json, predictions.csv, confusion.png and report.md for an :func:`evaluate` result."""
    from voxemo.reports.plots import plot_confusion, plot_reliability

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    labels = list(result.labels)
    (out / "metrics.json").write_text(json.dumps(result.metrics_dict(), indent=2))
    write_rows_csv([p.to_dict() for p in result.predictions], out / "predictions.csv")
    plot_confusion(result.confusion, labels, out / "confusion.png",
                   title=f"{result.protocol}: summed confusion (row-normalised)")
    cal = result.calibration
    if cal:
        plot_reliability(cal["reliability"], out / "reliability.png",
                         title=f"{result.protocol}: reliability ({cal['n_bins']} bins)")
    model = f" ({result.model})" if result.model else ""
    report = [f"# Evaluation: `{result.protocol}`{model}\n",
              "Speaker-independent: no speaker is in both training and test.\n" if result.protocol in SPEAKER_FOLDS
              else "Random clip split: the same speakers are in training and test, so this overstates accuracy "
                   "on new voices. Shown for comparison only.\n",
              "| metric | mean | std |", "|---|---|---|"]
    report += [f"| {m} | {s.mean:.3f} | {s.std:.3f} |" for m, s in result.summary.items()]
    folds = [f.to_dict() for f in result.folds]
    report += ["\n## Folds\n", _md_table([{k: f[k] for k in _FOLD_COLUMNS if k in f} for f in folds])]
    if cal:
        report += calibration_markdown(cal, [f.name for f in result.folds])
    report += ["## Per class (recall)\n", _md_table(result.per_group("emotion")), "## Per intensity\n",
               _md_table(result.per_group("intensity")), "## Per gender\n", _md_table(result.per_group("gender")),
               "## Most frequent confusions\n", _md_table(result.top_confusions()), "![confusion](confusion.png)\n"]
    (out / "report.md").write_text("\n".join(report))
    return out
