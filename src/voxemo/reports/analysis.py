"""The audio analysis' report: ``report.md``, ``clips.csv`` and the figures."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from voxemo.core.config import AudioConfig, FeatureConfig
from voxemo.core.records import Utterance
from voxemo.experiment.analysis import ClipStats, _example_spectrograms, _group_order
from voxemo.io.files import atomic_path
from voxemo.reports import plots

PLOT_FILES: dict[str, str] = {
    "durations": "durations_hist.png",
    "durations_by_emotion": "durations_by_emotion.png",
    "levels_by_emotion": "levels_by_emotion.png",
    "levels_by_gender": "levels_by_gender.png",
    "trim_sweep": "trim_sweep.png",
    "spectrograms": "spectrograms.png",
}


def _json_safe(obj: Any) -> Any:
    """Replace NaN and infinities (not valid JSON) with None, recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def _fmt(value: Any, spec: str = ".2f") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return format(value, spec)


def _pct(fraction: float) -> str:
    return f"{100 * fraction:.4f} %" if fraction < 0.01 else f"{100 * fraction:.2f} %"


def _group_table(groups: Mapping[str, Mapping[str, Mapping[str, Any]]], label: str) -> list[str]:
    head = (f"| {label} | clips | duration mean ± sd (s) | duration p5–p95 (s) | peak mean (dBFS) "
            "| RMS mean ± sd (dBFS) | LUFS mean ± sd |")
    lines = [head, "|" + "---|" * 7]
    for g, m in groups.items():
        d, pk, rms, lufs = m["duration_s"], m["peak_dbfs"], m["rms_dbfs"], m["lufs"]
        lines.append(
            f"| {g} | {d['count']} | {_fmt(d['mean'])} ± {_fmt(d['std'])} | {_fmt(d['p5'])}–{_fmt(d['p95'])} "
            f"| {_fmt(pk['mean'], '.1f')} | {_fmt(rms['mean'], '.1f')} ± {_fmt(rms['std'], '.1f')} "
            f"| {_fmt(lufs['mean'], '.1f')} ± {_fmt(lufs['std'], '.1f')} |"
        )
    return lines


def sweep_markdown(sweep: Sequence[Mapping[str, Any]], chosen: float | None = None) -> str:
    """The trim sweep as a markdown table (the chosen threshold in bold)."""
    lines = [
        "| top_db | mean removed (s) | total removed (s) | duration kept | mean energy removed "
        "| max energy removed | clips < min_duration | trimmed p50 / p95 / max (s) |",
        "|" + "---|" * 8,
    ]
    for r in sweep:
        t = f"**{r['top_db']:g}**" if chosen == r["top_db"] else f"{r['top_db']:g}"
        lines.append(
            f"| {t} | {r['mean_removed_s']:.3f} | {r['total_removed_s']:.1f} | {100 * r['kept_fraction']:.1f} % "
            f"| {_pct(r['mean_energy_removed'])} | {_pct(r['max_energy_removed'])} | {r['n_below_min_duration']} "
            f"| {r['trimmed_p50_s']:.2f} / {r['trimmed_p95_s']:.2f} / {r['trimmed_max_s']:.2f} |"
        )
    return "\n".join(lines)


def _why(sweep: Sequence[Mapping[str, Any]], rec: Mapping[str, Any]) -> str:
    """One sentence on what the chosen threshold removes and why the next more aggressive one was rejected."""
    tol = rec["tolerance"]
    by_db = {r["top_db"]: r for r in sweep}
    parts = []
    if rec["top_db"] in by_db:
        r = by_db[rec["top_db"]]
        parts.append(f"at top_db={r['top_db']:g} trimming removes {r['mean_removed_s']:.2f} s per clip on average "
                     f"but only {_pct(r['mean_energy_removed'])} of a clip's energy on average "
                     f"({_pct(r['max_energy_removed'])} at most)")
    else:
        parts.append("no swept threshold stays within the tolerances, so trimming is disabled")
    harsher = [r for r in sweep if r["top_db"] < (rec["top_db"] or math.inf)]
    if harsher:
        r = max(harsher, key=lambda row: row["top_db"])
        failed = []
        if r["mean_energy_removed"] > tol["mean_energy_removed"]:
            failed.append(f"mean energy removed {_pct(r['mean_energy_removed'])} > {_pct(tol['mean_energy_removed'])}")
        if r["max_energy_removed"] > tol["max_energy_removed"]:
            failed.append(f"worst clip {_pct(r['max_energy_removed'])} > {_pct(tol['max_energy_removed'])}")
        if r["n_below_min_duration"]:
            failed.append(f"{r['n_below_min_duration']} clip(s) shorter than min_duration")
        if failed:
            parts.append(f"top_db={r['top_db']:g} was rejected ({'; '.join(failed)})")
    return "; ".join(parts) + "."


def render_report(summary: Mapping[str, Any]) -> str:
    """``report.md``: the summary as readable markdown, with links to the figures."""
    rec, audio = summary["recommended"], summary["audio"]
    overall = summary["overall"]["all"]
    plots_ = summary["plots"]
    lines = [
        "# Audio analysis",
        "",
        f"{summary['n_analysed']} of {summary['n_clips']} clips analysed, {len(summary['failures'])} failed. "
        f"Total audio {summary['total_duration_s'] / 60:.1f} min. Sample rates (Hz: clips): "
        + ", ".join(f"{k}: {v}" for k, v in summary["sample_rates"].items())
        + "; channels: " + ", ".join(f"{k}: {v}" for k, v in summary["channels"].items()) + ".",
        "",
        f"Analysis settings: trimming runs on the mono downmix resampled to {audio['sample_rate']} Hz "
        f"(AudioConfig {json.dumps(audio)}). Levels are measured on the mono downmix of the original file; "
        "loudness is ITU-R BS.1770 integrated loudness (pyloudnorm).",
        "",
        "## Recommendation",
        "",
        f"- **top_db = {rec['top_db']:g}**, **duration = {rec['duration']:g} s** "
        f"(95th percentile of trimmed durations: {rec['trimmed_p95_s']:.2f} s).",
        f"- Rule: {rec['rule']}",
        f"- Why: {_why(summary['sweep'], rec)}",
        "",
        "## Silence trimming sweep",
        "",
        "Energy removed is the fraction of a clip's signal energy (sum of squared samples) in the parts trimming "
        "cuts: near 0 when only silence goes, rising once trimming bites into speech.",
        "",
        sweep_markdown(summary["sweep"], rec["top_db"]),
        "",
        f"![trim sweep]({plots_['trim_sweep']})",
        "",
        "## Durations and levels",
        "",
        f"All clips: duration {_fmt(overall['duration_s']['mean'])} s on average "
        f"({_fmt(overall['duration_s']['min'])}–{_fmt(overall['duration_s']['max'])} s); peak "
        f"{_fmt(overall['peak_dbfs']['mean'], '.1f')} dBFS, RMS {_fmt(overall['rms_dbfs']['mean'], '.1f')} dBFS, "
        f"loudness {_fmt(overall['lufs']['mean'], '.1f')} LUFS on average. Full distributions (count, mean, std, "
        "min, percentiles, max) are in `summary.json`.",
        "",
    ]
    for key, title, label in (("by_emotion", "Per emotion", "emotion"), ("by_intensity", "Per intensity", "intensity"),
                              ("by_gender", "Per gender", "gender"), ("by_speaker", "Per speaker", "speaker")):
        if summary[key]:
            lines += [f"### {title}", "", *_group_table(summary[key], label), ""]
    lines += ["## Figures", ""]
    captions = {
        "durations": "Durations, original and trimmed at the recommended threshold",
        "durations_by_emotion": "Durations per emotion",
        "levels_by_emotion": "Peak, RMS and loudness per emotion",
        "levels_by_gender": "Peak, RMS and loudness per gender",
        "spectrograms": "Example log-mel spectrograms (recommended trimming), one per emotion",
    }
    for name, caption in captions.items():
        if name in plots_:
            lines += [f"### {caption}", "", f"![{caption}]({plots_[name]})", ""]
    lines += ["## Failures", ""]
    lines += [f"- `{f['path']}`: {f['error']}" for f in summary["failures"]] or ["None."]
    return "\n".join(lines) + "\n"


def _csv_value(v: Any) -> Any:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return "" if v is None else v


def write_clips_csv(records: Sequence[Utterance], results: Sequence[ClipStats | str], path: Path) -> Path:
    """One row per clip: the record's fields, ``error`` (empty when analysed), then :meth:`ClipStats.row`.

    A failed clip has only its record fields and ``error``; NaN is written as an empty cell.
    """
    rows = [r.to_dict() | ({"error": ""} | s.row() if isinstance(s, ClipStats) else {"error": s})
            for r, s in zip(records, results, strict=True)]
    fields = max((list(row) for row in rows), key=len)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows({k: _csv_value(v) for k, v in row.items()} for row in rows)
    return path


def _write_plots(
    out: Path, records: Sequence[Utterance], stats: Sequence[ClipStats], sweep: Sequence[Mapping[str, Any]],
    rec: Mapping[str, Any], audio: AudioConfig, examples_per_emotion: int,
) -> dict[str, str]:
    files = {name: out / fname for name, fname in PLOT_FILES.items()}
    chosen = rec["top_db"]
    trimmed = [s.cut(chosen).kept_s if chosen else s.duration_s for s in stats]

    def by(attr: str, values: Sequence[float]) -> dict[str, list[float]]:
        groups: dict[str, list[float]] = {}
        for r, v in zip(records, values, strict=True):
            groups.setdefault(str(getattr(r, attr)), []).append(v)
        return {g: groups[g] for g in sorted(groups, key=_group_order)}

    plots.plot_histogram(
        {"original": [s.duration_s for s in stats], f"trimmed at top_db={chosen:g}": trimmed},
        files["durations"], xlabel="Duration (s)", title="Clip durations",
        markers={f"recommended duration {rec['duration']:g} s": rec["duration"]},
    )
    plots.plot_boxplots(
        {"Duration (s)": by("emotion", [s.duration_s for s in stats]),
         f"Trimmed duration at top_db={chosen:g} (s)": by("emotion", trimmed)},
        files["durations_by_emotion"], title="Durations per emotion",
    )
    for attr, name in (("emotion", "levels_by_emotion"), ("gender", "levels_by_gender")):
        plots.plot_boxplots(
            {"Peak (dBFS)": by(attr, [s.peak_dbfs for s in stats]),
             "RMS (dBFS)": by(attr, [s.rms_dbfs for s in stats]),
             "Integrated loudness (LUFS)": by(attr, [s.lufs for s in stats])},
            files[name], title=f"Levels per {attr}",
        )
    tol = rec["tolerance"]
    plots.plot_trim_sweep(
        [r["top_db"] for r in sweep], [r["mean_removed_s"] for r in sweep],
        [r["mean_energy_removed"] for r in sweep], [r["max_energy_removed"] for r in sweep],
        files["trim_sweep"], chosen=chosen or None,
        tolerances={"mean tolerance": tol["mean_energy_removed"], "max tolerance": tol["max_energy_removed"]},
    )
    features = FeatureConfig()
    examples = _example_spectrograms(records, audio.replace(top_db=chosen), features, examples_per_emotion)
    if examples:
        # One example each: a 4-wide grid; several: one row per emotion.
        ncols = 4 if examples_per_emotion == 1 else examples_per_emotion
        plots.plot_spectrograms(examples, files["spectrograms"], sr=audio.sample_rate, hop_length=features.hop_length,
                                ncols=ncols, title=f"Log-mel spectrograms (trimmed at top_db={chosen:g})")
    else:
        files.pop("spectrograms")
    return {name: p.name for name, p in files.items()}
