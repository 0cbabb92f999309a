"""The report folder of a cross-corpus evaluation: ``metrics.json``, ``predictions.csv``, ``confusion.png`` and
``report.md``.
"""

from __future__ import annotations

import json
from pathlib import Path

from voxemo.experiment.results import CrossCorpusResult
from voxemo.reports.tables import _md_table, write_rows_csv


def write_cross_corpus(result: CrossCorpusResult, out_dir: str | Path) -> Path:
    """Write metrics.json, predictions.csv, confusion.png and report.md for a :func:`cross_corpus` result."""
    from voxemo.reports.plots import plot_confusion

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shared, four = result.shared, result.four_class
    (out / "metrics.json").write_text(json.dumps(result.metrics_dict(), indent=2))
    write_rows_csv([p.to_dict() for p in result.scores.predictions], out / "predictions.csv")
    source = Path(result.model).name if result.model else " + ".join(result.train)
    arrow = f"{source} → {' + '.join(result.test)}"
    plot_confusion(shared.confusion, list(shared.labels), out / "confusion.png", title=f"{arrow} (row-normalised)")
    rows = [{"classes": f"{len(shared.labels)} shared", "n": shared.n, "accuracy": shared.accuracy,
             "uar": shared.uar, "macro_f1": shared.macro_f1}]
    if four:
        rows.append({"classes": "angry/happy/neutral/sad", "n": four.n, "accuracy": four.accuracy,
                     "uar": four.uar, "macro_f1": four.macro_f1})
    if result.adapted is not None:
        a, a4 = result.adapted.shared, result.adapted.four_class
        rows.append({"classes": f"{len(a.labels)} shared, adapted", "n": a.n, "accuracy": a.accuracy, "uar": a.uar,
                     "macro_f1": a.macro_f1})
        if a4:
            rows.append({"classes": "angry/happy/neutral/sad, adapted", "n": a4.n, "accuracy": a4.accuracy,
                         "uar": a4.uar, "macro_f1": a4.macro_f1})
    excluded = ", ".join(f"{k} {v}" for k, v in result.scores.excluded.items()) or "none"
    trained = (f"The trained model `{result.model}` (not trained here), classes {', '.join(result.model_labels)}; "
               "tested on " if result.model else
               f"One model trained on {sum(result.train.values())} clips ({', '.join(result.train)}) for "
               f"{result.epochs} epochs, classes {', '.join(result.model_labels)}; tested on ")
    report = [f"# Cross-corpus evaluation: {arrow}\n",
              trained +
              f"{sum(result.test.values())} clips ({', '.join(result.test)}). Calm is folded into neutral; "
              f"only the shared classes ({', '.join(shared.labels)}) are scored, each clip predicted as its "
              f"most probable shared class. Test clips left out: {excluded}.\n",
              _md_table(rows), "## Per class (recall)\n", _md_table([c.to_dict() for c in shared.per_class])]
    if four:
        report += ["## Per class, angry/happy/neutral/sad (recall)\n",
                   _md_table([c.to_dict() for c in four.per_class])]
    if result.adapted is not None:
        seconds = (result.adaptation or {}).get("speech_seconds", 0.0)
        report.append(f"Adapted: the same model with its normalisation statistics adapted, without labels, to the "
                      f"test clips' speech ({seconds / 60:.1f} min; `voxemo adapt`), then scored on the same "
                      "clips.\n")
    if result.shots:
        report += shots_section(result, out)
    report += ["## Per gender\n", _md_table(result.per_group("gender")), "## Most frequent confusions\n",
               _md_table(result.top_confusions()), "![confusion](confusion.png)\n"]
    (out / "report.md").write_text("\n".join(report))
    return out


def shots_section(result: CrossCorpusResult, out: Path) -> list[str]:
    """The few-shot learning curve as a table, ``shots.csv`` and ``shots.png``."""
    from voxemo.reports.plots import plot_learning_curve

    rows = []
    for s in result.shots:
        d = s.to_dict()
        row = {"labelled clips per class": s.k, "draws": len(s.uar), "uar": d["uar"]["mean"],
               "uar_std": d["uar"]["std"]}
        if d["uar4"]:
            row.update({"uar4": d["uar4"]["mean"], "uar4_std": d["uar4"]["std"]})
        rows.append(row)
    write_rows_csv(rows, out / "shots.csv")
    plot_learning_curve(result.shots, out / "shots.png")
    start = "the model adapted without labels" if result.adapted is not None else "the model as trained"
    return ["## Few-shot adaptation\n",
            f"Each draw splits the test speakers in two halves; {start} is fine-tuned on K labelled clips per shared "
            "class from one half (`voxemo adapt --labelled`) and scored on every clip of the other half (K = 0: not "
            "fine-tuned, same half). Mean and standard deviation over the draws; uar4 over angry/happy/neutral/sad."
            "\n", _md_table(rows), "![few-shot learning curve](shots.png)\n"]


def summary_line(result: CrossCorpusResult, source: str, out: str | Path) -> str:
    """The one line ``voxemo evaluate --train/--trained ... --test ...`` prints."""
    import numpy as np

    shared, four = result.shared, result.four_class
    extra = f"; 4 classes: UAR {four.uar:.3f}, accuracy {four.accuracy:.3f}" if four else ""
    if result.adapted is not None:
        adapted = result.adapted.four_class or result.adapted.shared
        extra += f"; adapted: UAR {adapted.uar:.3f}"
    for point in result.shots:
        extra += f"; {point.k} shots: UAR {np.mean(point.uar4 or point.uar):.3f}"
    return (f"{source} -> {' + '.join(result.test)}: {len(shared.labels)} shared classes: "
            f"UAR {shared.uar:.3f}, accuracy {shared.accuracy:.3f}, macro-F1 {shared.macro_f1:.3f}{extra}; "
            f"report: {Path(out) / 'report.md'}")
