"""Audio analysis of a corpus: durations, levels, loudness, and what silence trimming cuts at each threshold.

The result drives the preprocessing the model is trained with: :func:`recommend` turns the trim sweep into a
``top_db`` and a segment ``duration`` by an explicit rule, and :func:`analyze` writes ``clips.csv``,
``summary.json``, ``report.md`` and PNG figures.

Layout: per-clip measurements are pure functions of an array (:func:`clip_stats`); aggregation works on the
resulting :class:`ClipStats` records (:func:`describe`, :func:`distributions`, :func:`sweep_table`,
:func:`recommend`); files are read in one worker (``_analyze_file``) and written by :func:`analyze` only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyloudnorm

from voxemo.core.config import AudioConfig, FeatureConfig
from voxemo.core.errors import AudioError, ConfigError
from voxemo.core.labels import EMOTIONS
from voxemo.core.records import Utterance
from voxemo.dsp.features import extract
from voxemo.dsp.signal import check_signal, peak_dbfs, resample, rms_dbfs, to_mono, trim
from voxemo.io.audio import load_audio

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
                             "speaker": "by_speaker"}

_PERCENTILES = (5, 25, 50, 75, 95)


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
    """Trim ``y`` (mono, at ``sr`` Hz) at each threshold with :func:`voxemo.dsp.signal.trim` and measure the cut."""
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
    Records whose key is None are left out. Groups follow :data:`~voxemo.core.labels.EMOTIONS` order when they are
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
    """Sort key: emotions in :data:`~voxemo.core.labels.EMOTIONS` order, then anything else alphabetically."""
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
    """Choose ``top_db`` and ``duration`` for :class:`~voxemo.core.config.AudioConfig` from a trim sweep.

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
        The bounds of :class:`~voxemo.core.config.AudioConfig` in seconds.
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
