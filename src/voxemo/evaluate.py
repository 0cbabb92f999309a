"""Evaluation protocols and metrics.

``actor-6fold`` is speaker-independent: fold k (0..5) tests actors 4k+1 … 4k+4 and trains on the other 20 for
the recipe's fixed number of epochs (``TrainConfig.epochs``); nothing about the test actors, not even an epoch
count, is chosen by looking at them. ``random`` is a stratified 80/20 clip split that lets the same actors appear
on both sides; it is kept only to show how much such a leaking split inflates accuracy. Normalisation statistics
are fitted inside each training set.

Calibration (:mod:`voxemo.calibration`): under ``actor-6fold`` fold k's test probabilities are also reported after
temperature scaling with a T fitted on the other five folds' out-of-fold test predictions (cross-fitting: all other
speakers, so fold k's test actors never influence its T), with ECE, NLL and Brier score before and after and a
reliability diagram. The single ``random`` split has nothing held out to fit on and reports uncalibrated values.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, recall_score
from sklearn.model_selection import train_test_split

from .calibration import calibration_markdown, evaluate_folds, window_probabilities
from .config import Config
from .errors import ConfigError
from .labels import EMOTIONS
from .parallel import pmap, split_cores
from .records import Utterance
from .train import predict_segments, train_model

PROTOCOLS = ("actor-6fold", "random")


@dataclass(frozen=True)
class Split:
    """Indices into the record list for one fold."""

    name: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def pick_validation_speakers(records: Sequence[Utterance], candidates: Sequence[str], n: int, seed: int) -> list[str]:
    """Choose ``n`` validation speakers among ``candidates``, alternating genders where genders are known."""
    rng = np.random.default_rng(seed)
    gender = {r.speaker: r.gender for r in records}
    groups: dict[str | None, list[str]] = {}
    for s in sorted(set(candidates)):
        groups.setdefault(gender.get(s), []).append(s)
    for g in groups.values():
        rng.shuffle(g)
    chosen: list[str] = []
    while len(chosen) < min(n, len(set(candidates))):
        for g in sorted(groups, key=str):
            if groups[g] and len(chosen) < n:
                chosen.append(groups[g].pop())
    return sorted(chosen)


def actor_folds(records: Sequence[Utterance], *, val_speakers: int, seed: int, n_folds: int = 6) -> list[Split]:
    """The speaker-independent folds: fold k tests the k-th block of ``24 / n_folds`` actors in id order, and
    ``val_speakers`` of the remaining speakers (0 for none) are held out for validation."""
    speakers = sorted({r.speaker for r in records}, key=lambda s: (len(s), s))
    if len(speakers) < n_folds:
        raise ConfigError(f"actor-6fold needs at least {n_folds} speakers, found {len(speakers)}")
    spk = np.array([r.speaker for r in records])
    per = len(speakers) / n_folds
    splits = []
    for k in range(n_folds):
        test_spk = speakers[round(k * per) : round((k + 1) * per)]
        rest = [s for s in speakers if s not in test_spk]
        val_spk = pick_validation_speakers(records, rest, val_speakers, seed + k)
        test = np.isin(spk, test_spk)
        val = np.isin(spk, val_spk)
        splits.append(Split(f"fold{k + 1}", np.flatnonzero(~test & ~val), np.flatnonzero(val), np.flatnonzero(test)))
    return splits


def random_split(records: Sequence[Utterance], *, seed: int, test_size: float = 0.2, val_size: float = 0.1) -> Split:
    """A stratified random clip split (the leaking protocol): same actors in train, validation and test."""
    idx = np.arange(len(records))
    labels = np.array([r.emotion for r in records])
    rest, test = train_test_split(idx, test_size=test_size, stratify=labels, random_state=seed)
    if val_size <= 0:
        return Split("random", np.sort(rest), np.array([], dtype=int), np.sort(test))
    train, val = train_test_split(rest, test_size=val_size / (1 - test_size), stratify=labels[rest], random_state=seed)
    return Split("random", np.sort(train), np.sort(val), np.sort(test))


def make_splits(records: Sequence[Utterance], protocol: str, config: Config) -> list[Split]:
    """The splits of ``protocol``; training folds keep every non-test clip (no validation part)."""
    if protocol == "actor-6fold":
        return actor_folds(records, val_speakers=0, seed=config.train.seed)
    if protocol == "random":
        return [random_split(records, seed=config.train.seed, val_size=0.0)]
    raise ConfigError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")


def scores(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict[str, float]:
    """Accuracy, UAR (unweighted average recall over classes present) and macro-F1."""
    present = np.unique(y_true)
    return {
        "accuracy": float(np.mean(y_true == y_pred)),
        "uar": float(recall_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
    }


def fit_and_test(job: tuple[Any, ...]) -> tuple[dict[str, Any], np.ndarray]:
    """Train on one split's training (and validation) clips; return the fold row and the test probabilities.

    A module-level function taking one tuple, so that process pools can run splits side by side; the study's
    variant comparison uses it too (with the validation clips as its test set). An optional tenth element holds
    the augmented copies of the training clips, an optional eleventh their sampling weights (multi-corpus), an
    optional twelfth their speakers (for ``train.speaker_adversary``).
    """
    name, train_x, train_y, val_x, val_y, test_x, test_y, n_classes, config, *rest = job
    train_aug, weights, speakers = (*rest, None, None, None)[:3]
    start = time.perf_counter()
    res = train_model(train_x, train_y, n_classes, config, val_specs=val_x or None, val_labels=val_y if val_x else None,
                      aug_specs=train_aug, weights=weights, speakers=speakers, progress=False, desc=name)
    window_probs = window_probabilities(test_x, config, lambda x: predict_segments(res.model, x))
    probs = np.stack([w.mean(axis=0) for w in window_probs]) if window_probs else np.zeros((0, n_classes))
    fold = {"fold": name, "n_train": len(train_x), "n_val": len(val_x), "n_test": len(test_x),
            "best_epoch": res.best_epoch, "epochs_run": len(res.history), "seconds": time.perf_counter() - start,
            **scores(test_y, probs.argmax(1), n_classes), "history": res.history, "window_probs": window_probs}
    return fold, probs


def evaluate(
    records: Sequence[Utterance],
    specs: Sequence[np.ndarray],
    config: Config,
    protocol: str = "actor-6fold",
    *,
    labels: Sequence[str] = EMOTIONS,
    aug_specs: Sequence[Sequence[np.ndarray]] | None = None,
    jobs: int = 0,
    progress: bool = True,
    fit: Callable[[tuple[Any, ...]], tuple[dict[str, Any], np.ndarray]] = fit_and_test,
) -> dict[str, Any]:
    """Train and test one model per split; returns metrics per fold, mean ± std, the summed confusion
    matrix, per-clip predictions and calibration. Splits train side by side in ``jobs`` processes (0 = one per
    core). ``aug_specs`` (augmented copies per record) are given to each split's training clips only.
    ``fit`` trains and tests one split (a module-level function taking :func:`fit_and_test`'s tuple and returning
    its ``(fold, probs)``, optionally with every test window's probabilities in ``fold["window_probs"]``);
    :func:`voxemo.baseline.fit_svm_and_test` evaluates the eGeMAPS + SVM baseline under the same protocols.
    """
    labels = list(labels)
    y = np.array([labels.index(r.emotion) for r in records])
    splits = make_splits(records, protocol, config)
    workers, threads = split_cores(len(splits), jobs)
    cfg = config if config.train.threads else config.replace(train=config.train.replace(threads=threads))
    take = lambda ix: [specs[i] for i in ix]  # noqa: E731
    work = [(s.name, take(s.train), y[s.train], take(s.val), y[s.val], take(s.test), y[s.test], len(labels), cfg,
             [aug_specs[i] for i in s.train] if aug_specs else None, None, [records[i].speaker for i in s.train])
            for s in splits]
    outcomes = pmap(fit, work, jobs=workers, desc=protocol, progress=progress, chunksize=1, unit="fold",
                    start_method="spawn")
    # a fit without window probabilities (one window per clip) is calibrated on its clip probabilities
    calibration, calibrated = evaluate_folds([fold.pop("window_probs", None) or [p[None] for p in probs]
                                              for fold, probs in outcomes], [y[s.test] for s in splits])
    folds, predictions = [], []
    for k, (split, (fold, probs)) in enumerate(zip(splits, outcomes)):
        fold["test_speakers"] = sorted({records[i].speaker for i in split.test}) if protocol != "random" else []
        folds.append(fold)
        for j, (i, pr) in enumerate(zip(split.test, probs)):
            r, p = records[i], int(pr.argmax())
            predictions.append({"path": r.path, "speaker": r.speaker, "gender": r.gender, "intensity": r.intensity,
                                "emotion": r.emotion, "predicted": labels[p], "fold": split.name,
                                "confidence": float(pr[p]),
                                "confidence_calibrated": float(calibrated[k][j, p]) if calibrated else None})
    true = np.array([labels.index(p["emotion"]) for p in predictions])
    pred = np.array([labels.index(p["predicted"]) for p in predictions])
    summary = {m: {"mean": float(np.mean([f[m] for f in folds])), "std": float(np.std([f[m] for f in folds]))}
               for m in ("accuracy", "uar", "macro_f1")}
    return {
        "protocol": protocol,
        "labels": labels,
        "folds": folds,
        "summary": summary,
        "pooled": scores(true, pred, len(labels)),
        "confusion": confusion_matrix(true, pred, labels=range(len(labels))).tolist(),
        "predictions": predictions,
        "calibration": calibration,
        "config": config.to_dict(),
    }


def breakdown(predictions: Sequence[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Accuracy per value of ``key`` (``emotion`` = per-class recall, ``intensity``, ``gender``, ``speaker``)."""
    groups: dict[str, list[bool]] = {}
    for p in predictions:
        groups.setdefault(str(p[key]), []).append(p["emotion"] == p["predicted"])
    return [{key: k, "n": len(v), "accuracy": float(np.mean(v))} for k, v in sorted(groups.items())]


def top_confusions(confusion: Sequence[Sequence[int]], labels: Sequence[str], k: int = 8) -> list[dict[str, Any]]:
    """The ``k`` most frequent (true, predicted) mistakes with their share of the true class."""
    cm = np.asarray(confusion)
    pairs = [(int(cm[i, j]), i, j) for i in range(len(labels)) for j in range(len(labels)) if i != j and cm[i, j]]
    pairs.sort(reverse=True)
    return [{"true": labels[i], "predicted": labels[j], "count": c, "share_of_true": c / max(1, int(cm[i].sum()))}
            for c, i, j in pairs[:k]]


def _md_table(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return "(none)\n"
    keys = list(rows[0])
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_rows_csv(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Write dicts with the same keys as CSV (header from the first row; None as an empty field)."""
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else [], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return Path(path)


def write_evaluation(result: dict[str, Any], out_dir: str | Path) -> Path:
    """Write metrics.json, predictions.csv, confusion.png and report.md for an :func:`evaluate` result."""
    from .plots import plot_confusion, plot_reliability  # matplotlib is imported only when reports are written

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
