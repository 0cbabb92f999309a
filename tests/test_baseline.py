"""The eGeMAPS + SVM baseline: features from the CNN's prepared signal, the cache, the speaker-grouped C search,
and evaluation under the same protocols and reports as the CNN."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import voiced
from voxemo.apps.cli import main
from voxemo.core.config import AudioConfig, Config
from voxemo.core.errors import AudioError, CorpusError
from voxemo.core.labels import EMOTIONS
from voxemo.corpus import load_corpus
from voxemo.dsp.features import prepare_signal
from voxemo.experiment.baseline import (
    C_GRID,
    N_FEATURES,
    EgemapsClip,
    egemaps,
    egemaps_file,
    evaluate_egemaps_svm,
    extract_egemaps,
    fit_svm,
    fit_svm_and_test,
)
from voxemo.experiment.results import FoldJob
from voxemo.reports.evaluation import write_evaluation


def test_egemaps_vector_tracks_pitch(rng: np.random.Generator) -> None:
    low = egemaps(voiced(1.0, 16000, rng, f0=120.0), 16000)
    high = egemaps(voiced(1.0, 16000, rng, f0=240.0), 16000)
    assert low.shape == high.shape == (N_FEATURES,) and low.dtype == np.float32
    assert np.isfinite(low).all()
    # feature 0 is F0semitoneFrom27.5Hz_sma3nz_amean: an octave is 12 semitones
    assert high[0] - low[0] == pytest.approx(12.0, abs=1.0)
    with pytest.raises(AudioError, match="mono"):
        egemaps(np.zeros((0,), np.float32), 16000)


def test_file_features_use_the_cnn_preprocessing(make_wav, rng: np.random.Generator) -> None:
    y = np.concatenate([np.zeros(8000, np.float32), voiced(1.0, 16000, rng), np.zeros(8000, np.float32)])
    path = make_wav("clip.wav", y, 16000)
    audio = AudioConfig()
    stored, sr = sf.read(path, dtype="float32")  # what the file holds (16-bit quantised)
    expected = egemaps(prepare_signal(stored, sr, audio), audio.sample_rate)
    np.testing.assert_allclose(egemaps_file(path, audio), expected, rtol=1e-5, atol=1e-5)
    # the trimmed silence does not reach openSMILE: with trimming off the vector changes
    untrimmed = egemaps_file(path, audio.replace(top_db=0.0))
    assert not np.allclose(untrimmed, expected, rtol=1e-3)


def test_extraction_is_cached_and_bad_files_are_messages(make_wav, tmp_path: Path, rng: np.random.Generator) -> None:
    good = make_wav("good.wav", voiced(1.0, 16000, rng), 16000)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really audio")
    audio = AudioConfig()
    first = extract_egemaps([good, bad], audio, cache_dir=tmp_path / "cache", jobs=1, progress=False)
    assert isinstance(first[0], np.ndarray) and first[0].shape == (N_FEATURES,)
    assert isinstance(first[1], str) and "bad.wav" in first[1] and "\n" not in first[1]
    entries = list((tmp_path / "cache").rglob("*.npy"))
    assert len(entries) == 1 and entries[0].parent.parent.name.startswith("egemaps-")
    np.save(entries[0], np.full(N_FEATURES, 7.0, np.float32))  # a changed entry proves the cache is read
    again = extract_egemaps([good], audio, cache_dir=tmp_path / "cache", jobs=1, progress=False)[0]
    assert (again == 7.0).all()
    entries[0].write_bytes(b"garbage")  # an unreadable entry is recomputed
    healed = extract_egemaps([good], audio, cache_dir=tmp_path / "cache", jobs=1, progress=False)[0]
    np.testing.assert_allclose(healed, first[0])
    # another trim threshold is another cache folder
    extract_egemaps([good], audio.replace(top_db=20.0), cache_dir=tmp_path / "cache", jobs=1, progress=False)
    assert len({p.parent.parent.name for p in (tmp_path / "cache").rglob("*.npy")}) == 2


def blobs(rng: np.random.Generator, n_speakers: int = 6, per: int = 24, n_classes: int = 4):
    """Separable Gaussian blobs per class with a per-speaker offset."""
    centres = rng.normal(0, 3, size=(n_classes, 10))
    x, y, groups = [], [], []
    for s in range(n_speakers):
        offset = rng.normal(0, 0.5, size=10)
        for i in range(per):
            c = i % n_classes
            x.append(centres[c] + offset + rng.normal(0, 1, size=10))
            y.append(c)
            groups.append(f"spk{s}")
    return np.array(x), np.array(y), groups


def test_fit_svm_chooses_c_by_grouped_inner_cv(rng: np.random.Generator) -> None:
    x, y, groups = blobs(rng)
    model, c, inner = fit_svm(x, y, groups)
    assert c in C_GRID and inner > 0.8
    assert np.allclose(model.predict_proba(x).sum(1), 1.0)
    assert np.mean(model.predict_proba(x).argmax(1) == y) > 0.9
    with pytest.raises(CorpusError, match="2 training speakers"):
        fit_svm(x, y, ["one"] * len(y))


def test_fit_svm_and_test_maps_missing_classes_to_zero_columns(rng: np.random.Generator) -> None:
    x, y, groups = blobs(rng, n_classes=3)
    clips = [EgemapsClip(v, g) for v, g in zip(x, groups)]
    y = y * 2  # classes 0, 2, 4 of 8: the others never occur in training
    job = FoldJob("f", clips[:100], y[:100], [], np.array([], int), clips[100:], y[100:], 8, Config())
    fold = fit_svm_and_test(job)
    probs = fold.probs
    assert probs.shape == (len(clips) - 100, 8)
    assert np.allclose(probs[:, [1, 3, 5, 6, 7]], 0.0) and np.allclose(probs.sum(1), 1.0, atol=1e-5)
    assert fold.accuracy > 0.8 and fold.C in C_GRID and len(fold.window_probs) == len(probs)
    assert fold.to_dict()["C"] == fold.C and "best_epoch" not in fold.to_dict()


@pytest.fixture
def fake_records(fake_ravdess):
    return load_corpus(fake_ravdess(actors=(1, 2, 3, 4, 5, 6)))


def test_evaluate_baseline_under_both_protocols_writes_the_cnn_reports(fake_records, tmp_path: Path) -> None:
    cfg = Config()
    result = evaluate_egemaps_svm(fake_records, cfg, "actor-6fold", cache_dir=str(tmp_path / "c"), jobs=1,
                                  progress=False)
    assert result.model == "egemaps-svm" and len(result.folds) == 6
    assert result.summary.uar.mean > 1.5 / len(EMOTIONS)  # pitch-coded emotions are learnable
    cal = result.calibration
    assert len(cal["folds"]) == 6 and all(f["temperature"] > 0 for f in cal["folds"])
    assert {"ece", "nll", "brier"} <= set(cal["pooled"]["after"])
    assert all(p.confidence_calibrated is not None for p in result.predictions)
    out = write_evaluation(result, tmp_path / "eval")
    report = (out / "report.md").read_text()
    assert "(egemaps-svm)" in report and "## Calibration" in report
    assert "| fold | n_train | n_val | n_test | C |" in report  # the SVM's C in place of the CNN's best epoch
    assert (out / "reliability.png").stat().st_size > 1000 and (out / "confusion.png").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["calibration"]["pooled"]["before"]["ece"] >= 0
    rnd = evaluate_egemaps_svm(fake_records, cfg, "random", cache_dir=str(tmp_path / "c"), jobs=1, progress=False)
    assert len(rnd.folds) == 1 and "after" not in rnd.calibration["pooled"]
    assert "Uncalibrated" in (write_evaluation(rnd, tmp_path / "rnd") / "report.md").read_text()


def test_cli_evaluate_model_egemaps_svm(fake_ravdess, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("VOXEMO_CACHE", str(tmp_path / "cache"))
    data = fake_ravdess(actors=(1, 2, 3, 4, 5, 6))
    assert main(["-q", "evaluate", str(data), "--model", "egemaps-svm", "--jobs", "1", "--out",
                 str(tmp_path / "ev")]) == 0
    assert "actor-6fold: accuracy" in capsys.readouterr().out
    assert (tmp_path / "ev" / "report.md").is_file()
    assert any(p.parent.parent.name.startswith("egemaps-") for p in (tmp_path / "cache").rglob("*.npy"))


def test_baseline_with_no_usable_clip_is_a_corpus_error(fake_records, tmp_path: Path) -> None:
    from dataclasses import replace

    broken = [replace(r, path=str(tmp_path / "missing.wav")) for r in fake_records[:3]]
    with pytest.raises(CorpusError, match="no usable clips"):
        evaluate_egemaps_svm(broken, Config(), cache_dir="", jobs=1, progress=False)


@pytest.mark.data
@pytest.mark.slow
def test_baseline_beats_chance_on_unseen_real_actors(real_ravdess: Path, tmp_path: Path) -> None:
    records = [r for r in load_corpus(real_ravdess) if int(r.speaker) <= 6]
    result = evaluate_egemaps_svm(records, Config(), "actor-6fold", jobs=1, progress=False)
    assert result.pooled.uar > 2.0 / len(EMOTIONS)  # chance is 1/8
    assert result.calibration["pooled"]["after"]["nll"] < np.log(len(EMOTIONS))
