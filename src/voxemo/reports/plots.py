"""Figures for the analysis and evaluation reports.

Every function takes data and a path, writes one PNG and returns the path. Figures are built with the
object-oriented API (:class:`matplotlib.figure.Figure` on an Agg canvas) rather than ``pyplot``: nothing is
registered in pyplot's global figure list, no interactive backend is ever selected, and the figure is freed
as soon as the function returns, so these functions are safe in worker processes, servers and tests.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from voxemo.core.errors import ConfigError
from voxemo.experiment.results import ShotScores

if TYPE_CHECKING:
    from voxemo.inference.timeline import Timeline

_DPI = 110


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=_DPI)
    return p


def _finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64).ravel()
    return v[np.isfinite(v)]


def plot_histogram(
    series: Mapping[str, Sequence[float] | np.ndarray],
    path: str | os.PathLike[str],
    *,
    xlabel: str,
    title: str = "",
    bins: int = 40,
    markers: Mapping[str, float] | None = None,
) -> Path:
    """Overlaid histograms of one or more series on shared bins, with optional labelled vertical lines.

    Parameters
    ----------
    series : mapping of str to array-like
        Legend label -> values (non-finite values are ignored).
    path : path-like
        PNG to write.
    xlabel : str
        Quantity and unit, e.g. ``"Duration (s)"``.
    markers : mapping of str to float, optional
        Legend label -> x position of a dashed vertical line (e.g. a recommended duration).
    """
    data = {k: _finite(v) for k, v in series.items()}
    pooled = np.concatenate([v for v in data.values() if v.size] or [np.zeros(1)])
    edges = np.histogram_bin_edges(pooled, bins=bins)
    fig = _figure(7.0, 4.0)
    ax = fig.subplots()
    for label, values in data.items():
        ax.hist(values, bins=edges.tolist(), alpha=0.55, label=f"{label} (n={values.size})")
    for i, (label, x) in enumerate((markers or {}).items()):
        ax.axvline(x, color=f"C{len(data) + i}", linestyle="--", linewidth=1.5, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Clips")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_boxplots(
    panels: Mapping[str, Mapping[str, Sequence[float] | np.ndarray]],
    path: str | os.PathLike[str],
    *,
    title: str = "",
) -> Path:
    """Side-by-side panels of box plots, one box per group.

    Parameters
    ----------
    panels : mapping of str to mapping of str to array-like
        Panel y-label (quantity and unit, e.g. ``"Peak (dBFS)"``) -> group name -> values. Non-finite values
        are ignored; every panel should list the same groups in the same order.
    path : path-like
        PNG to write.
    """
    n = len(panels)
    if n == 0:
        raise ConfigError("plot_boxplots: panels is empty; pass at least one {ylabel: {group: values}}")
    n_groups = max(len(g) for g in panels.values())
    fig = _figure(max(3.5, 0.42 * n_groups + 1.2) * n, 4.0)
    axes = np.atleast_1d(fig.subplots(1, n, squeeze=False)[0])
    for ax, (ylabel, groups) in zip(axes, panels.items(), strict=True):
        names = list(groups)
        ax.boxplot([_finite(groups[g]) for g in names], tick_labels=names, showfliers=True,
                   flierprops={"markersize": 2, "alpha": 0.5})
        ax.set_ylabel(ylabel)
        ax.tick_params(axis="x", labelrotation=45 if n_groups > 3 else 0)
        ax.grid(axis="y", alpha=0.3)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_trim_sweep(
    top_db: Sequence[float],
    mean_removed_s: Sequence[float],
    mean_energy_removed: Sequence[float],
    max_energy_removed: Sequence[float],
    path: str | os.PathLike[str],
    *,
    chosen: float | None = None,
    tolerances: Mapping[str, float] | None = None,
    title: str = "Silence trimming: what each threshold cuts",
) -> Path:
    """Seconds and signal energy removed by trimming, as a function of the threshold.

    Parameters
    ----------
    top_db : sequence of float
        Thresholds in dB below the loudest frame (smaller = more aggressive).
    mean_removed_s : sequence of float
        Mean seconds removed per clip at each threshold.
    mean_energy_removed, max_energy_removed : sequence of float
        Mean and largest fraction (0..1) of a clip's energy removed at each threshold; drawn in percent on a
        log axis (zeros are drawn at the axis floor).
    chosen : float, optional
        Threshold to mark with a vertical line.
    tolerances : mapping of str to float, optional
        Legend label -> energy fraction (0..1) drawn as a horizontal dotted line.
    """
    x = np.asarray(top_db, dtype=np.float64)
    fig = _figure(7.0, 6.0)
    ax_s, ax_e = fig.subplots(2, 1, sharex=True)
    ax_s.plot(x, mean_removed_s, "o-", color="C0")
    ax_s.set_ylabel("Mean seconds removed per clip (s)")
    ax_s.grid(alpha=0.3)
    floor = 1e-6  # 0.0001 %: anything below is drawn on the floor of the log axis
    series = ((mean_energy_removed, "mean over clips", "o-"), (max_energy_removed, "worst clip", "s--"))
    for values, label, style in series:
        pct = 100.0 * np.maximum(np.asarray(values, dtype=np.float64), floor)
        ax_e.plot(x, pct, style, label=label)
    for i, (label, frac) in enumerate((tolerances or {}).items()):
        ax_e.axhline(100.0 * frac, color=f"C{3 + i}", linestyle=":", linewidth=1.2, label=label)
    ax_e.set_yscale("log")
    ax_e.set_ylabel("Energy removed (% of clip)")
    ax_e.set_xlabel("top_db (dB below loudest frame; smaller trims more)")
    ax_e.grid(alpha=0.3, which="both")
    if chosen is not None:
        for ax in (ax_s, ax_e):
            ax.axvline(chosen, color="k", linestyle="--", linewidth=1.2, label=f"chosen top_db={chosen:g}")
    ax_e.legend(fontsize=8)
    ax_s.set_title(title)
    return _save(fig, path)


def plot_spectrograms(
    examples: Sequence[tuple[str, np.ndarray]],
    path: str | os.PathLike[str],
    *,
    sr: int,
    hop_length: int,
    ncols: int = 4,
    floor_db: float = -80.0,
    title: str = "",
) -> Path:
    """Grid of log-mel spectrograms on a shared colour scale and time axis.

    Parameters
    ----------
    examples : sequence of (str, np.ndarray)
        Panel title -> log-mel spectrogram, shape (n_mels, n_frames), in dB (0 = loudest bin).
    sr : int
        Sample rate in Hz the spectrograms were computed at.
    hop_length : int
        Frame hop in samples; with ``sr`` it converts frames to seconds.
    floor_db : float
        Bottom of the colour scale in dB.
    """
    if not examples:
        raise ConfigError("plot_spectrograms: examples is empty; pass at least one (title, spectrogram)")
    ncols = max(1, min(ncols, len(examples)))
    nrows = -(-len(examples) // ncols)
    fig = _figure(3.2 * ncols + 0.8, 2.6 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True)
    image = None
    for ax, (name, spec) in zip(axes.flat, examples, strict=False):
        n_mels, n_frames = spec.shape
        image = ax.imshow(spec, origin="lower", aspect="auto", cmap="magma", vmin=floor_db, vmax=0.0,
                          extent=(0.0, n_frames * hop_length / sr, 0, n_mels), interpolation="nearest")
        ax.set_title(name)
    # Shared axes take the limits of the last image drawn: widen them to the longest example.
    axes[0, 0].set_xlim(0.0, max(spec.shape[1] for _, spec in examples) * hop_length / sr)
    for ax in axes[-1]:
        ax.set_xlabel("Time (s)")
    for ax in axes[:, 0]:
        ax.set_ylabel("Mel bin")
    for ax in axes.flat[len(examples):]:
        ax.set_visible(False)
    if image is not None:
        fig.colorbar(image, ax=axes, label="dB re. loudest bin", shrink=0.9)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_confusion(
    matrix: np.ndarray | Sequence[Sequence[float]],
    labels: Sequence[str],
    path: str | os.PathLike[str],
    *,
    title: str = "",
    normalize: bool = True,
) -> Path:
    """Confusion matrix as an annotated heat map.

    Parameters
    ----------
    matrix : array-like, shape (n_classes, n_classes)
        Counts; rows are the true classes, columns the predicted ones, both in ``labels`` order.
    labels : sequence of str
        Class names, length ``n_classes``.
    path : path-like
        PNG to write.
    title : str
        Figure title.
    normalize : bool
        Divide each row by its total, so a cell reads "fraction of class *row* predicted as *column*" and the
        diagonal is per-class recall; a row with no samples stays 0. When False, cells show raw counts.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ConfigError
        If the matrix is not square or does not match ``labels``.
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] != len(labels):
        raise ConfigError(
            f"plot_confusion: matrix of shape {m.shape} does not match {len(labels)} labels; "
            "expected a square (n_labels, n_labels) array with rows = true, columns = predicted"
        )
    if normalize:
        totals = m.sum(axis=1, keepdims=True)
        m = np.divide(m, totals, out=np.zeros_like(m), where=totals > 0)
    n = len(labels)
    size = max(4.5, 0.62 * n + 2.0)
    fig = _figure(size + 1.0, size)
    ax = fig.subplots()
    vmax = 1.0 if normalize else max(float(m.max()), 1.0)
    image = ax.imshow(m, cmap="Blues", vmin=0.0, vmax=vmax)
    for i in range(n):
        for j in range(n):
            value = m[i, j]
            text = f"{value:.2f}" if normalize else f"{value:.0f}" if float(value).is_integer() else f"{value:.2g}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if value > 0.6 * vmax else "black")
    ax.set_xticks(range(n), labels=list(labels), rotation=45, ha="right")
    ax.set_yticks(range(n), labels=list(labels))
    ax.set_xlabel("Predicted")
    ax.set_ylabel("True")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="Fraction of true class" if normalize else "Clips", shrink=0.8)
    return _save(fig, path)


def plot_timeline(result: Timeline, path: str | os.PathLike[str], *, title: str = "") -> Path:
    """Emotion probabilities over time, one curve per emotion, with the merged segments shaded in its colour.

    Parameters
    ----------
    result : Timeline
        What :func:`voxemo.inference.timeline.timeline` returns: curves are drawn at the centres of its windows and
        broken at pauses, its segments are shaded.
    path : path-like
        PNG to write.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    windows, segments, duration = result.windows, result.segments, result.duration
    classes: list[str] = []
    for w in windows:
        for c in w.probabilities:
            if c not in classes:
                classes.append(c)
    colour = {c: f"C{i % 10}" for i, c in enumerate(classes)}
    xs: list[float] = []
    ps: dict[str, list[float]] = {c: [] for c in classes}
    for w in windows:  # a NaN after each pause breaks the curves between utterances
        speech = w.speech and bool(w.probabilities)
        xs.append((w.start + w.end) / 2 if speech else np.nan)
        for c in classes:
            ps[c].append(w.probabilities.get(c, np.nan) if speech else np.nan)
    fig = _figure(12.0, 4.2)
    ax = fig.subplots()
    for s in segments:
        ax.axvspan(s.start, s.end, color=colour.get(s.emotion, "0.5"), alpha=0.15, linewidth=0)
        if duration and (s.end - s.start) / duration > 0.03:
            ax.text((s.start + s.end) / 2, 1.02, s.emotion, ha="center", va="bottom", fontsize=7,
                    color=colour.get(s.emotion, "0.3"))
    for c in classes:
        ax.plot(xs, ps[c], ".-", color=colour[c], label=c, linewidth=1.0, markersize=3)
    ax.set_xlim(0.0, duration or 1.0)
    ax.set_ylim(0.0, 1.08)
    ax.set_xlabel("Time (s)")
    ax.set_ylabel("Probability")
    ax.set_title(title or f"{Path(result.path).name}: {len(segments)} speech segments")
    if classes:
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return _save(fig, path)


def plot_reliability(tables: Mapping[str, Sequence[Mapping[str, float]]], path: str | os.PathLike[str], *,
                     title: str = "") -> Path:
    """Reliability diagram: accuracy against mean confidence per confidence bin, one curve per table, the
    diagonal being perfect calibration; below it, how many predictions fall in each bin.

    Parameters
    ----------
    tables : mapping of name -> rows
        Rows as :func:`voxemo.experiment.calibration.reliability_table` returns them (``low``, ``high``, ``n``,
        ``confidence``, ``accuracy``), e.g. ``{"before": ..., "after": ...}``.
    path : path-like
        PNG to write.
    """
    fig = _figure(5.5, 6.0)
    ax, hist = fig.subplots(2, 1, height_ratios=(3, 1), sharex=True)
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="perfect calibration")
    width = 1.0 / max(1, len(tables) + 1)
    for i, (name, rows) in enumerate(tables.items()):
        conf = [r["confidence"] for r in rows]
        ax.plot(conf, [r["accuracy"] for r in rows], marker="o", label=name)
        if rows:
            bin_width = rows[0]["high"] - rows[0]["low"]
            hist.bar([r["low"] + bin_width * width * (i + 0.5) for r in rows], [r["n"] for r in rows],
                     width=bin_width * width, label=name, align="center")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("Accuracy")
    ax.set_title(title)
    ax.legend(loc="upper left")
    hist.set_xlabel("Confidence (top probability)")
    hist.set_ylabel("Clips")
    return _save(fig, path)


def plot_learning_curve(points: Sequence[ShotScores], path: str | os.PathLike[str], *, title: str = "") -> Path:
    """UAR against labelled clips per class (a few-shot learning curve), mean ± std over draws; angry/happy/neutral/
    sad as a second line when scored."""
    fig = _figure(5.5, 3.6)
    ax = fig.add_subplot()
    ks = [p.k for p in points]
    for name, series in (("shared classes", [p.uar for p in points]), ("angry/happy/neutral/sad",
                                                                      [p.uar4 for p in points])):
        if any(s is None for s in series):
            continue
        mean = np.array([np.mean(s) for s in series])  # type: ignore[arg-type]
        std = np.array([np.std(s) for s in series])  # type: ignore[arg-type]
        ax.errorbar(ks, mean, yerr=std, marker="o", capsize=3, label=name)
    ax.set_xlabel("labelled clips per class")
    ax.set_ylabel("UAR (other speakers)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(title or "Few-shot adaptation")
    return _save(fig, path)
