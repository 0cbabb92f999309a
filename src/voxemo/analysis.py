"""Audio analysis of a corpus: durations, levels, loudness, and what silence trimming cuts at each threshold.

The result drives the preprocessing the model is trained with: :func:`recommend` turns the trim sweep into a
``top_db`` and a segment ``duration`` by an explicit rule, and :func:`analyze` writes ``clips.csv``,
``summary.json``, ``report.md`` and PNG figures.

Layout: per-clip measurements are pure functions of an array (:func:`clip_stats`); aggregation works on the
resulting :class:`ClipStats` records (:func:`describe`, :func:`distributions`, :func:`sweep_table`,
:func:`recommend`); files are read in one worker (``_analyze_file``) and written by :func:`analyze` only.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyloudnorm

from . import plots
from .audio import check_signal, load_audio, peak_dbfs, resample, rms_dbfs, to_mono, trim
from .config import AudioConfig, FeatureConfig
from .errors import AudioError, ConfigError
from .features import extract
from .labels import EMOTIONS
from .parallel import pmap
from .records import Utterance

#: Default trim thresholds swept, in dB below the loudest frame.
DEFAULT_THRESHOLDS: tuple[float, ...] = (15, 20, 25, 30, 35, 40, 50, 60)

# Recommendation tolerances, as fractions of a clip's energy (sum of squared samples) that trimming may remove.
# Word endings that fade out (the final "door" of RAVDESS) carry very little energy next to the vowels, so a
# threshold that clips them still removes well under 1 %: on RAVDESS, top_db=25 removes 0.04 % on average and
# 0.4 % at most, and its cut points visibly fall inside decaying speech. 0.01 % on average (removed parts 40 dB
# below the clip) and 0.1 % for any clip (30 dB) are the tolerances at which the chosen cut points sit in silence
# or breath noise on inspected spectrograms.
#: Largest acceptable *mean* fraction (0..1) of a clip's energy removed by trimming.
MEAN_ENERGY_TOLERANCE = 1e-4
#: Largest acceptable fraction (0..1) of energy removed from *any single* clip.
MAX_ENERGY_TOLERANCE = 1e-3
#: Recommended durations are rounded up to a multiple of this many seconds.
DURATION_STEP = 0.25

#: Level measurements summarised per group, with their units.
METRICS: dict[str, str] = {"duration_s": "s", "peak_dbfs": "dBFS", "rms_dbfs": "dBFS", "lufs": "LUFS"}
#: Metadata fields the distributions are grouped by (``Utterance`` attribute -> summary key).
GROUPINGS: dict[str, str] = {"emotion": "by_emotion", "intensity": "by_intensity", "gender": "by_gender",
                             "speaker": "by_actor"}
_PERCENTILES = (5, 25, 50, 75, 95)

PLOT_FILES: dict[str, str] = {
    "durations": "durations_hist.png",
    "durations_by_emotion": "durations_by_emotion.png",
    "levels_by_emotion": "levels_by_emotion.png",
    "levels_by_gender": "levels_by_gender.png",
    "trim_sweep": "trim_sweep.png",
    "spectrograms": "spectrograms.png",
}


# --------------------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class TrimCut:
    """What trimming at one threshold does to one clip.

    Attributes
    ----------
    top_db : float
        Threshold in dB below the clip's loudest frame.
    kept_s, removed_s : float
        Seconds kept and removed (at the analysis sample rate).
    energy_removed : float
        Fraction (0..1) of the clip's signal energy, sum of squared samples, in the removed parts.
    """

    top_db: float
    kept_s: float
    removed_s: float
    energy_removed: float


@dataclass(frozen=True)
class ClipStats:
    """Measurements of one clip.

    Attributes
    ----------
    duration_s : float
        Length of the original file in seconds.
    sample_rate : int
        The file's sample rate in Hz.
    channels : int
        The file's channel count.
    peak_dbfs, rms_dbfs : float
        Peak and RMS level of the mono downmix in dBFS.
    lufs : float
        Integrated loudness (ITU-R BS.1770) of the mono downmix in LUFS; NaN for clips shorter than one
        0.4 s gating block, ``-inf`` when every block is below the -70 LUFS absolute gate.
    cuts : tuple of TrimCut
        One entry per swept threshold, in sweep order.
    """

    duration_s: float
    sample_rate: int
    channels: int
    peak_dbfs: float
    rms_dbfs: float
    lufs: float
    cuts: tuple[TrimCut, ...]

    def cut(self, top_db: float) -> TrimCut:
        """The :class:`TrimCut` at ``top_db`` (which must be one of the swept thresholds)."""
        for c in self.cuts:
            if c.top_db == top_db:
                return c
        raise ConfigError(f"top_db={top_db:g} was not swept; available: {[c.top_db for c in self.cuts]}")

    def row(self) -> dict[str, float]:
        """Flat ``{column: value}`` view, as written to ``clips.csv``."""
        out: dict[str, float] = {
            "duration_s": self.duration_s, "sample_rate": self.sample_rate, "channels": self.channels,
            "peak_dbfs": self.peak_dbfs, "rms_dbfs": self.rms_dbfs, "lufs": self.lufs,
        }
        for c in self.cuts:
            out[f"trim{c.top_db:g}_kept_s"] = c.kept_s
            out[f"trim{c.top_db:g}_removed_s"] = c.removed_s
            out[f"trim{c.top_db:g}_energy_removed"] = c.energy_removed
        return out


# -------------------------------------------------------------------------------------- per-clip (pure)


def loudness_lufs(y: np.ndarray, sr: int) -> float:
    """Integrated loudness of a mono signal in LUFS (pyloudnorm, ITU-R BS.1770-4).

    Returns NaN when ``y`` is shorter than one 0.4 s gating block (pyloudnorm would raise), and ``-inf``
    when every block is gated out (near-silence).
    """
    meter = pyloudnorm.Meter(sr)
    if len(y) < meter.block_size * sr:
        return float("nan")
    return float(meter.integrated_loudness(np.asarray(y, dtype=np.float64)))


def energy_outside(y: np.ndarray, start: int, end: int) -> float:
    """Fraction (0..1) of ``sum(y**2)`` lying outside ``y[start:end]``; 0 for an all-zero signal."""
    e = np.square(np.asarray(y, dtype=np.float64))
    total = float(e.sum())
    if total <= 0:
        return 0.0
    return float(max(0.0, 1.0 - e[start:end].sum() / total))


def trim_sweep(y: np.ndarray, sr: int, thresholds: Sequence[float]) -> tuple[TrimCut, ...]:
    """Trim ``y`` (mono, at ``sr`` Hz) at each threshold with :func:`voxemo.audio.trim` and measure the cut."""
    total_s = len(y) / sr
    cuts = []
    for top_db in thresholds:
        _, (start, end) = trim(y, top_db=float(top_db))
        kept = (end - start) / sr
        cuts.append(TrimCut(float(top_db), kept, total_s - kept, energy_outside(y, start, end)))
    return tuple(cuts)


def clip_stats(
    y: np.ndarray, sr: int, *, target_sr: int, thresholds: Sequence[float], name: str = "signal"
) -> ClipStats:
    """Measure one clip.

    Parameters
    ----------
    y : np.ndarray, shape (n,) or (n, channels)
        The clip as read from its file.
    sr : int
        Its sample rate in Hz.
    target_sr : int
        Rate in Hz the clip is resampled to (once) before the trim sweep, as in the training pipeline.
    thresholds : sequence of float
        Trim thresholds ``top_db`` in dB.
    name : str
        How error messages name the clip (e.g. its path).

    Raises
    ------
    AudioError
        If the signal is empty, silent or holds non-finite samples (the training pipeline rejects it too).
    """
    mono = to_mono(np.asarray(y))
    check_signal(mono, sr, name=name)
    return ClipStats(
        duration_s=len(mono) / sr,
        sample_rate=int(sr),
        channels=1 if np.ndim(y) == 1 else int(np.shape(y)[1]),
        peak_dbfs=peak_dbfs(mono),
        rms_dbfs=rms_dbfs(mono),
        lufs=loudness_lufs(mono, sr),
        cuts=trim_sweep(resample(mono, sr, target_sr), target_sr, thresholds),
    )


def _analyze_file(job: tuple[str, int, float, tuple[float, ...]]) -> ClipStats | str:
    """Worker: :func:`clip_stats` of one file, or a one-line error message naming it."""
    path, target_sr, max_duration, thresholds = job
    try:
        y, sr = load_audio(path, max_duration=max_duration)
        return clip_stats(y, sr, target_sr=target_sr, thresholds=thresholds, name=path)
    except AudioError as exc:
        return str(exc)
    except (OSError, ValueError, MemoryError) as exc:  # e.g. a decoder or resampler failing on odd input
        detail = str(exc).splitlines()[0] if str(exc) else ""
        return f"{path}: {type(exc).__name__} {detail}".strip()


# ------------------------------------------------------------------------------------ aggregation (pure)


def describe(values: Iterable[float]) -> dict[str, float | int | None]:
    """Count, mean, standard deviation, minimum, 5/25/50/75/95th percentiles and maximum of the finite values.

    ``missing`` counts NaN and infinite values, which are left out of the statistics; with no finite value
    every statistic is None.
    """
    v = np.asarray(list(values), dtype=np.float64)
    ok = v[np.isfinite(v)]
    out: dict[str, float | int | None] = {"count": int(ok.size), "missing": int(v.size - ok.size)}
    keys = ["mean", "std", "min", *(f"p{q}" for q in _PERCENTILES), "max"]
    if ok.size == 0:
        return out | dict.fromkeys(keys)
    stats = [ok.mean(), ok.std(), ok.min(), *np.percentile(ok, _PERCENTILES), ok.max()]
    return out | {k: float(s) for k, s in zip(keys, stats, strict=True)}


def distributions(
    records: Sequence[Utterance], stats: Sequence[ClipStats], key: Callable[[Utterance], Any] | None = None
) -> dict[str, dict[str, dict[str, float | int | None]]]:
    """:func:`describe` of every metric in :data:`METRICS`, per group.

    ``key`` maps a record to its group (e.g. ``lambda r: r.emotion``); None gives one group, ``"all"``.
    Records whose key is None are left out. Groups follow :data:`~voxemo.labels.EMOTIONS` order when they are
    emotions, sorted order otherwise.
    """
    groups: dict[str, list[ClipStats]] = {}
    for rec, st in zip(records, stats, strict=True):
        g = "all" if key is None else key(rec)
        if g is not None:
            groups.setdefault(str(g), []).append(st)
    return {g: {m: describe(getattr(st, m) for st in groups[g]) for m in METRICS}
            for g in sorted(groups, key=_group_order)}


def _group_order(group: str) -> tuple[int, str]:
    """Sort key: emotions in :data:`~voxemo.labels.EMOTIONS` order, then anything else alphabetically."""
    return (EMOTIONS.index(group) if group in EMOTIONS else len(EMOTIONS), group)


def sweep_table(
    stats: Sequence[ClipStats], thresholds: Sequence[float], *, min_duration: float, paths: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Aggregate the trim sweep, one row per threshold.

    Each row holds ``top_db``; ``total_removed_s`` and ``mean_removed_s`` (seconds); ``kept_fraction`` (kept
    seconds over total seconds); ``mean_energy_removed`` and ``max_energy_removed`` (fractions 0..1 of a
    clip's energy); ``worst_clip`` (path of the clip losing most energy, when ``paths`` is given);
    ``n_below_min_duration`` (clips whose trimmed length is under ``min_duration`` seconds); and
    ``trimmed_p50_s``, ``trimmed_p95_s``, ``trimmed_max_s`` (trimmed durations in seconds).
    """
    rows = []
    for top_db in thresholds:
        cuts = [s.cut(float(top_db)) for s in stats]
        kept = np.array([c.kept_s for c in cuts])
        removed = np.array([c.removed_s for c in cuts])
        energy = np.array([c.energy_removed for c in cuts])
        worst = int(np.argmax(energy))
        rows.append({
            "top_db": float(top_db),
            "total_removed_s": float(removed.sum()),
            "mean_removed_s": float(removed.mean()),
            "kept_fraction": float(kept.sum() / (kept.sum() + removed.sum())),
            "mean_energy_removed": float(energy.mean()),
            "max_energy_removed": float(energy.max()),
            "worst_clip": paths[worst] if paths is not None else None,
            "n_below_min_duration": int((kept < min_duration).sum()),
            "trimmed_p50_s": float(np.percentile(kept, 50)),
            "trimmed_p95_s": float(np.percentile(kept, 95)),
            "trimmed_max_s": float(kept.max()),
        })
    return rows


def round_up(seconds: float, step: float = DURATION_STEP) -> float:
    """Round ``seconds`` up to a multiple of ``step`` (values already on the grid stay)."""
    return math.ceil(seconds / step - 1e-9) * step


def recommend(
    sweep: Sequence[Mapping[str, Any]],
    *,
    untrimmed_p95_s: float,
    min_duration: float,
    max_duration: float = math.inf,
    mean_tolerance: float = MEAN_ENERGY_TOLERANCE,
    max_tolerance: float = MAX_ENERGY_TOLERANCE,
) -> dict[str, Any]:
    """Choose ``top_db`` and ``duration`` for :class:`~voxemo.config.AudioConfig` from a trim sweep.

    Rule: ``top_db`` is the smallest (most aggressive) swept threshold at which trimming removes on average at
    most ``mean_tolerance`` of a clip's energy, at most ``max_tolerance`` from any clip, and leaves no clip
    shorter than ``min_duration`` -- i.e. it cuts silence and breath noise but not speech. If no threshold
    qualifies, trimming is disabled (``top_db=0``). ``duration`` is the 95th percentile of the clips' trimmed
    durations at that threshold (untrimmed durations when disabled), rounded up to :data:`DURATION_STEP`
    seconds and kept within ``[min_duration, max_duration]``.

    Parameters
    ----------
    sweep : sequence of mapping
        Rows of :func:`sweep_table`.
    untrimmed_p95_s : float
        95th percentile of the untrimmed durations in seconds (used when trimming is disabled).
    min_duration, max_duration : float
        The bounds of :class:`~voxemo.config.AudioConfig` in seconds.
    mean_tolerance, max_tolerance : float
        Energy tolerances as fractions (0.001 = 0.1 %); see :data:`MEAN_ENERGY_TOLERANCE`.

    Returns
    -------
    dict
        ``top_db`` (dB), ``duration`` (s), ``rule`` (one sentence), ``tolerance`` and, per swept threshold,
        whether it ``qualified``.

    Examples
    --------
    >>> rows = [{"top_db": 20.0, "mean_energy_removed": 0.001, "max_energy_removed": 0.02,
    ...          "n_below_min_duration": 0, "trimmed_p95_s": 2.1},
    ...         {"top_db": 30.0, "mean_energy_removed": 0.00005, "max_energy_removed": 0.0006,
    ...          "n_below_min_duration": 0, "trimmed_p95_s": 2.6}]
    >>> r = recommend(rows, untrimmed_p95_s=4.5, min_duration=0.25)
    >>> r["top_db"], r["duration"]
    (30.0, 2.75)
    """
    def qualifies(row: Mapping[str, Any]) -> bool:
        return (row["mean_energy_removed"] <= mean_tolerance and row["max_energy_removed"] <= max_tolerance
                and row["n_below_min_duration"] == 0)

    passing = sorted((row for row in sweep if qualifies(row)), key=lambda row: row["top_db"])
    top_db = float(passing[0]["top_db"]) if passing else 0.0
    p95 = float(passing[0]["trimmed_p95_s"]) if passing else float(untrimmed_p95_s)
    duration = min(max(round_up(p95), min_duration), max_duration)
    rule = (
        f"top_db is the smallest swept threshold at which trimming removes on average <= {mean_tolerance:.2%} "
        f"and from any clip <= {max_tolerance:.2%} of its energy and leaves no clip under {min_duration:g} s "
        f"(0 = no trimming if none does), and duration is the 95th percentile of trimmed durations at that "
        f"threshold rounded up to {DURATION_STEP:g} s."
    )
    return {
        "top_db": top_db,
        "duration": duration,
        "rule": rule,
        "tolerance": {"mean_energy_removed": mean_tolerance, "max_energy_removed": max_tolerance},
        "trimmed_p95_s": p95,
        "qualified": {f"{row['top_db']:g}": qualifies(row) for row in sweep},
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


# ------------------------------------------------------------------------------------------------ report


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
                              ("by_gender", "Per gender", "gender"), ("by_actor", "Per actor", "actor")):
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


# ----------------------------------------------------------------------------------------------- writing


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
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows({k: _csv_value(v) for k, v in row.items()} for row in rows)
    os.replace(tmp, path)
    return path


def _example_spectrograms(
    records: Sequence[Utterance], audio: AudioConfig, features: FeatureConfig, per_emotion: int
) -> list[tuple[str, np.ndarray]]:
    """Log-mel spectrograms of the first ``per_emotion`` usable clips of each emotion, in EMOTIONS order."""
    examples: list[tuple[str, np.ndarray]] = []
    for emotion in EMOTIONS:
        found = 0
        for rec in (r for r in records if r.emotion == emotion):
            if found == per_emotion:
                break
            try:
                y, sr = load_audio(rec.path, max_duration=audio.max_duration)
                examples.append((emotion, extract(y, sr, audio, features, name=rec.path)))
                found += 1
            except AudioError:
                continue
    return examples


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


def analyze(
    records: Sequence[Utterance],
    out_dir: str | os.PathLike[str],
    *,
    audio: AudioConfig = AudioConfig(),  # noqa: B008  (frozen dataclass: safe as a default)
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    jobs: int = 0,
    progress: bool = True,
    examples_per_emotion: int = 1,
) -> dict[str, Any]:
    """Analyse a corpus' audio and write ``clips.csv``, ``summary.json``, ``report.md`` and PNG figures.

    Parameters
    ----------
    records : sequence of Utterance
        The clips, e.g. from :func:`voxemo.corpus.load_ravdess`.
    out_dir : path-like
        Folder for the outputs (created if needed; existing files with the same names are replaced).
    audio : AudioConfig
        ``sample_rate`` is the rate trimming is measured at, ``min_duration`` the shortest acceptable trimmed
        clip, ``max_duration`` the longest file read. Its ``top_db`` and ``duration`` are not used: the analysis
        recommends them.
    thresholds : sequence of float
        Trim thresholds ``top_db`` to sweep, in dB (> 0).
    jobs : int
        Worker processes (0 = all cores).
    progress : bool
        Show a progress bar.
    examples_per_emotion : int
        Example spectrograms per emotion in ``spectrograms.png`` (0 = no spectrogram figure).

    Returns
    -------
    dict
        The summary also written to ``summary.json``: clip counts, formats, ``overall`` and ``by_emotion`` /
        ``by_intensity`` / ``by_gender`` / ``by_actor`` distributions (see :func:`describe`), ``sweep`` (see
        :func:`sweep_table`), ``recommended`` (see :func:`recommend`), ``recommended_audio`` (``audio`` with the
        recommended ``top_db`` and ``duration``), ``audio`` (the config used),
        ``failures`` (``{"path", "error"}`` per unreadable clip) and ``plots`` (file names).

    Raises
    ------
    ConfigError
        If ``records`` is empty or a threshold is not positive.
    AudioError
        If no clip could be analysed.
    """
    records = list(records)
    thresholds = tuple(float(t) for t in thresholds)
    if not records:
        raise ConfigError("analyze: no records given; pass the Utterance records of at least one clip")
    if not thresholds or any(t <= 0 for t in thresholds) or len(set(thresholds)) != len(thresholds):
        raise ConfigError(f"analyze: thresholds={thresholds!r} must be distinct positive top_db values in dB")
    if examples_per_emotion < 0:
        raise ConfigError(f"analyze: examples_per_emotion={examples_per_emotion!r} must be >= 0")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    jobs_ = [(r.path, audio.sample_rate, audio.max_duration, thresholds) for r in records]
    results = pmap(_analyze_file, jobs_, jobs=jobs, desc="analysis", progress=progress)
    ok = [(r, s) for r, s in zip(records, results, strict=True) if isinstance(s, ClipStats)]
    failures = [{"path": r.path, "error": s} for r, s in zip(records, results, strict=True) if isinstance(s, str)]
    if not ok:
        raise AudioError(f"analyze: none of the {len(records)} clips could be analysed; first error: "
                         f"{failures[0]['error']}")
    recs, stats = [r for r, _ in ok], [s for _, s in ok]

    sweep = sweep_table(stats, thresholds, min_duration=audio.min_duration, paths=[r.path for r in recs])
    untrimmed_p95 = float(np.percentile([s.duration_s for s in stats], 95))
    recommended = recommend(sweep, untrimmed_p95_s=untrimmed_p95, min_duration=audio.min_duration,
                            max_duration=audio.max_duration)
    summary: dict[str, Any] = {
        "n_clips": len(records),
        "n_analysed": len(stats),
        "total_duration_s": float(sum(s.duration_s for s in stats)),
        "sample_rates": {str(k): v for k, v in sorted(Counter(s.sample_rate for s in stats).items())},
        "channels": {str(k): v for k, v in sorted(Counter(s.channels for s in stats).items())},
        "audio": audio.to_dict(),
        "thresholds": list(thresholds),
        "recommended": recommended,
        "recommended_audio": audio.replace(top_db=recommended["top_db"], duration=recommended["duration"]).to_dict(),
        "sweep": sweep,
        "overall": distributions(recs, stats),
        **{name: distributions(recs, stats, lambda r, a=attr: getattr(r, a)) for attr, name in GROUPINGS.items()},
        "failures": failures,
    }
    summary["plots"] = _write_plots(out, recs, stats, sweep, recommended, audio, examples_per_emotion)
    write_clips_csv(records, results, out / "clips.csv")
    summary = _json_safe(summary)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (out / "report.md").write_text(render_report(summary), encoding="utf-8")
    return summary
