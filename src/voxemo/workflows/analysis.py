"""Analyse a corpus' audio and write its report folder: measurements from :mod:`voxemo.experiment.analysis`,
rendering by :mod:`voxemo.reports.analysis`.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from operator import attrgetter
from pathlib import Path
from typing import Any

import numpy as np

from voxemo.core.config import AudioConfig
from voxemo.core.errors import AudioError, ConfigError
from voxemo.core.parallel import pmap
from voxemo.core.records import Utterance
from voxemo.experiment.analysis import (
    DEFAULT_THRESHOLDS,
    GROUPINGS,
    ClipStats,
    _analyze_file,
    distributions,
    recommend,
    sweep_table,
)
from voxemo.reports.analysis import _json_safe, _write_plots, render_report, write_clips_csv


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
        ``by_intensity`` / ``by_gender`` / ``by_speaker`` distributions (see :func:`describe`), ``sweep`` (see
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
    thresholds = _checked(records, thresholds, examples_per_emotion)
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
    summary = _summary(records, recs, stats, audio, thresholds, recommended, sweep, failures)
    summary["plots"] = _write_plots(out, recs, stats, sweep, recommended, audio, examples_per_emotion)
    write_clips_csv(records, results, out / "clips.csv")
    summary = _json_safe(summary)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (out / "report.md").write_text(render_report(summary), encoding="utf-8")
    return summary


def _checked(records: Sequence[Utterance], thresholds: Sequence[float], examples_per_emotion: int
             ) -> tuple[float, ...]:
    """:func:`analyze`'s arguments checked; the thresholds as floats."""
    out = tuple(float(t) for t in thresholds)
    if not records:
        raise ConfigError("analyze: no records given; pass the Utterance records of at least one clip")
    if not out or any(t <= 0 for t in out) or len(set(out)) != len(out):
        raise ConfigError(f"analyze: thresholds={out!r} must be distinct positive top_db values in dB")
    if examples_per_emotion < 0:
        raise ConfigError(f"analyze: examples_per_emotion={examples_per_emotion!r} must be >= 0")
    return out


def _summary(records: Sequence[Utterance], recs: Sequence[Utterance], stats: Sequence[Any], audio: AudioConfig,
             thresholds: tuple[float, ...], recommended: dict[str, Any], sweep: Any,
             failures: list[dict[str, str]]) -> dict[str, Any]:
    """``summary.json`` without its plots (see :func:`analyze`)."""
    return {
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
        **{name: distributions(recs, stats, attrgetter(attr)) for attr, name in GROUPINGS.items()},
        "failures": failures,
    }
