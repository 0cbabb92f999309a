"""The classic baseline: openSMILE eGeMAPSv02 functionals per clip, standardised, into an RBF support vector machine.

eGeMAPS (Eyben et al., 2016) is the field's minimal acoustic parameter set for affect: 88 functionals (means,
deviations, percentiles, slopes) of pitch, jitter, shimmer, loudness, formants, spectral slopes, MFCCs and rhythm.
The features are computed by the ``opensmile`` package (which ships the openSMILE binaries) from the *same
prepared signal* the CNN sees (:func:`voxemo.dsp.features.prepare_signal`: mono, resampled with soxr, silence
trimmed), and cached on disk like the CNN's features.

The classifier is scikit-learn's ``StandardScaler`` + ``SVC(kernel="rbf", class_weight="balanced")``. Its ``C``
is chosen on the training part of each split only, by an inner cross-validation grouped by speaker (no speaker in
both an inner training and an inner validation part) maximising UAR (balanced accuracy); ``gamma="scale"``.
Probabilities come from Platt scaling of the SVM's decision values (:func:`make_svm`), then the evaluation's temperature
cross-fitting as for the CNN. ``voxemo evaluate --model egemaps-svm`` runs it under the same protocols and writes
the same reports.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from voxemo.core.config import AudioConfig, Config
from voxemo.core.errors import AudioError, CorpusError
from voxemo.core.labels import EMOTIONS
from voxemo.core.parallel import pmap
from voxemo.core.records import Utterance
from voxemo.dsp.features import prepare_signal
from voxemo.experiment.metrics import scores
from voxemo.experiment.results import BaselineInfo, Evaluation, FoldJob, FoldResult, FoldRunner
from voxemo.io.audio import load_audio
from voxemo.io.cache import cache_root
from voxemo.io.files import atomic_path, file_digest

MODEL_NAME = "egemaps-svm"

FEATURE_SET = "eGeMAPSv02"

N_FEATURES = 88

#: Bumped whenever the baseline's feature computation changes, so cached vectors are never reused across versions.
BASELINE_VERSION = 1

#: Candidate values of the SVM's C for the inner speaker-grouped cross-validation.
C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)

INNER_FOLDS = 5


@dataclass(frozen=True)
class EgemapsClip:
    """One clip's eGeMAPS vector with its speaker (the inner cross-validation groups by speaker)."""

    features: np.ndarray
    speaker: str


@lru_cache(maxsize=1)
def _smile() -> Any:
    import opensmile

    return opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                           feature_level=opensmile.FeatureLevel.Functionals)


def egemaps(signal: np.ndarray, sr: int, *, name: str = "signal") -> np.ndarray:
    """eGeMAPSv02 functionals of a prepared mono signal.

    Parameters
    ----------
    signal : np.ndarray, shape (n,)
        Mono samples, e.g. from :func:`voxemo.dsp.features.prepare_signal`.
    sr : int
        Sample rate in Hz.

    Returns
    -------
    np.ndarray, shape (88,), float32

    Raises
    ------
    AudioError
        If openSMILE fails or returns non-finite values.
    """
    y = np.ascontiguousarray(signal, dtype=np.float32)
    if y.ndim != 1 or not len(y):
        raise AudioError(f"{name}: eGeMAPS needs a non-empty mono signal, got shape {y.shape}")
    try:
        values = _smile().process_signal(y, sr).to_numpy(dtype=np.float32).ravel()
    except Exception as exc:  # openSMILE's errors come as RuntimeError/ValueError/OSError from its wrapper
        raise AudioError(f"{name}: openSMILE failed ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
                         ) from None
    if values.shape != (N_FEATURES,) or not np.all(np.isfinite(values)):
        raise AudioError(f"{name}: openSMILE returned {values.size} values, some non-finite; expected {N_FEATURES}")
    return values


def egemaps_file(path: str | os.PathLike[str], audio: AudioConfig) -> np.ndarray:
    """eGeMAPS vector (88,) of an audio file, after the CNN's preprocessing (resample, trim)."""
    y, sr = load_audio(path, max_duration=audio.max_duration)
    signal = prepare_signal(y, sr, audio, name=str(path))
    return egemaps(signal, audio.sample_rate, name=str(path))


def egemaps_digest(audio: AudioConfig) -> str:
    """Short hash of everything that determines a clip's eGeMAPS vector (the cache folder's name)."""
    import opensmile

    audio_part = {k: v for k, v in audio.to_dict().items() if k in ("sample_rate", "top_db", "min_duration")}
    blob = json.dumps({"v": BASELINE_VERSION, "set": FEATURE_SET, "opensmile": opensmile.__version__,
                       "audio": audio_part}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _egemaps_for(job: tuple[str, AudioConfig, str | None]) -> np.ndarray | str:
    """Worker: one file's eGeMAPS vector, from the cache when present; an error message on failure."""

    path, audio, root = job
    try:
        entry = None
        if root:
            digest = file_digest(path)
            entry = Path(root) / f"egemaps-{egemaps_digest(audio)}" / digest[:2] / f"{digest}.npy"
            try:
                return np.load(entry, allow_pickle=False)
            except (OSError, ValueError, EOFError):
                pass  # missing or unreadable: recompute and replace
        values = egemaps_file(path, audio)
        if entry is not None:
            entry.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(entry, ".tmp.npy") as tmp:
                np.save(tmp, values, allow_pickle=False)
        return values
    except AudioError as exc:
        return str(exc)
    except OSError as exc:
        return f"{path}: {exc.strerror or exc}"


def extract_egemaps(paths: Iterable[str | os.PathLike[str]], audio: AudioConfig, *,
                    cache_dir: str | os.PathLike[str] | None = None, jobs: int = 0,
                    progress: bool = True) -> list[np.ndarray | str]:
    """eGeMAPS vectors of many files in input order (``jobs`` processes, 0 = all cores), cached under
    ``cache_dir`` (None: :func:`voxemo.io.cache.default_cache_dir`; ``""``: no cache). A file that fails gives its
    one-line error message instead of an array."""

    work = [(str(p), audio, cache_root(cache_dir)) for p in paths]
    return pmap(_egemaps_for, work, jobs=jobs, desc="egemaps", progress=progress, chunksize=8)


# ---- classifier ------------------------------------------------------------------------------------------------
def make_svm(c: float = 1.0, *, probability: bool = False, seed: int = 0) -> Any:
    """``StandardScaler`` + RBF ``SVC`` with balanced class weights (a scikit-learn Pipeline); with
    ``probability``, wrapped in ``CalibratedClassifierCV(method="sigmoid", ensemble=False)``: one SVM on all the
    data, its decision values mapped to probabilities by Platt scaling fitted on 5-fold out-of-fold decisions
    (what ``SVC(probability=True)``, deprecated in scikit-learn 1.9, did)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    svm = make_pipeline(StandardScaler(), SVC(kernel="rbf", C=c, gamma="scale", class_weight="balanced",
                                              random_state=seed))
    return CalibratedClassifierCV(svm, method="sigmoid", ensemble=False, cv=5) if probability else svm


def fit_svm(x: np.ndarray, y: np.ndarray, groups: Sequence[str], *, seed: int = 0,
            grid: Sequence[float] = C_GRID) -> tuple[Any, float, float]:
    """Choose C by speaker-grouped inner cross-validation (UAR), then refit on all of ``x`` with probabilities.

    Parameters
    ----------
    x : np.ndarray, shape (n, 88)
    y : np.ndarray of int, shape (n,)
    groups : sequence of str
        Speaker of each row; inner folds never split a speaker.

    Returns
    -------
    (pipeline, C, inner UAR of that C)
    """
    from sklearn.model_selection import GridSearchCV, GroupKFold

    n_groups = len(set(groups))
    if n_groups < 2:
        raise CorpusError(f"the eGeMAPS + SVM baseline needs at least 2 training speakers, found {n_groups}")
    search = GridSearchCV(make_svm(seed=seed), {"svc__C": list(grid)}, scoring="balanced_accuracy",
                          cv=GroupKFold(n_splits=min(INNER_FOLDS, n_groups)), refit=False, n_jobs=1,
                          error_score="raise")
    search.fit(x, y, groups=np.asarray(groups))
    c = float(search.best_params_["svc__C"])
    model = make_svm(c, probability=True, seed=seed).fit(x, y)
    return model, c, float(search.best_score_)


def fit_svm_and_test(job: FoldJob) -> FoldResult:
    """:func:`voxemo.experiment.evaluate.fit_and_test` for the baseline: the same :class:`FoldJob`, with
    :class:`EgemapsClip` items in place of spectrograms (validation clips, if any, join the training clips:
    the inner cross-validation does the model selection)."""

    n_classes = job.n_classes
    start = time.perf_counter()
    clips = list(job.train_x) + list(job.val_x)
    x = np.stack([c.features for c in clips])
    train_y = np.asarray(job.train_y)
    y = np.concatenate([train_y, np.asarray(job.val_y, dtype=train_y.dtype)])
    model, c, inner = fit_svm(x, y, [c.speaker for c in clips], seed=job.config.train.seed)
    probs = np.zeros((len(job.test_x), n_classes), np.float32)
    if len(job.test_x):
        probs[:, model.classes_] = model.predict_proba(np.stack([c.features for c in job.test_x]))
    s = scores(np.asarray(job.test_y), probs.argmax(1), n_classes)
    return FoldResult(job.name, len(clips), 0, len(job.test_x), C=c, inner_uar=inner,
                      seconds=time.perf_counter() - start, accuracy=s["accuracy"], uar=s["uar"],
                      macro_f1=s["macro_f1"], probs=probs, window_probs=tuple(p[None] for p in probs))


def evaluate_egemaps_svm(records: Sequence[Utterance], config: Config, protocol: str = "actor-6fold", *,
                         labels: Sequence[str] = EMOTIONS, cache_dir: str | None = None, jobs: int = 0,
                         progress: bool = True, runner: FoldRunner | None = None) -> Evaluation:
    """Evaluate the baseline under ``protocol`` exactly like :func:`voxemo.experiment.evaluate.evaluate`
    evaluates the CNN (same splits, metrics, calibration and result layout, for
    :func:`voxemo.reports.evaluation.write_evaluation`).

    Clips whose audio fails are skipped with their message in ``result.skipped``.
    """
    from voxemo.experiment.evaluate import evaluate

    results = extract_egemaps([r.path for r in records], config.audio, cache_dir=cache_dir, jobs=jobs,
                              progress=progress)
    kept = [(r, v) for r, v in zip(records, results) if not isinstance(v, str)]
    if not kept:
        raise CorpusError("no usable clips: every file failed to load (first: "
                          f"{next((v for v in results if isinstance(v, str)), '?')})")
    recs = [r for r, _ in kept]
    clips = [EgemapsClip(v, r.speaker) for r, v in kept]
    result = evaluate(recs, clips, config, protocol, labels=labels, jobs=jobs, progress=progress,
                      fit=fit_svm_and_test, runner=runner)
    info = BaselineInfo(features=f"openSMILE {FEATURE_SET} functionals ({N_FEATURES})",
                        classifier="StandardScaler + SVC(rbf, gamma=scale, class_weight=balanced), "
                                   "Platt-scaled probabilities",
                        C_grid=C_GRID, C_selection=f"speaker-grouped {INNER_FOLDS}-fold inner CV, UAR")
    return replace(result, model=MODEL_NAME, skipped=tuple(v for v in results if isinstance(v, str)), baseline=info)
