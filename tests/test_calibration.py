"""Temperature scaling, ECE/NLL/Brier, cross-fitting, and the temperature travelling with a model folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.special import softmax

from conftest import voiced
from voxemo.core.errors import ModelError
from voxemo.experiment.calibration import (
    brier_score,
    cross_fit,
    expected_calibration_error,
    fit_temperature,
    holdout_fit,
    negative_log_likelihood,
    reliability_table,
)
from voxemo.inference.calibration import clip_log_proba, temperature_scale
from voxemo.inference.loading import load_model
from voxemo.io.modelfile import CALIBRATION, load_temperature


def sample_labels(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One label per row drawn from that row's distribution."""
    return (probs.cumsum(1) > rng.random((len(probs), 1))).argmax(1)


def overconfident(n: int, rng: np.random.Generator, true_t: float = 2.5) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose softmax is over-confident: labels really follow softmax(z / true_t)."""
    z = rng.normal(0.0, 3.0, size=(n, 8))
    return z, sample_labels(softmax(z / true_t, axis=1), rng)


def test_ece_of_a_hand_made_example() -> None:
    # bin (0.8, 0.867]: two at 0.85, one right -> gap 0.35; bin (0.6, 0.667]: two at 0.65, both right -> gap 0.35;
    # bin (0.933, 1]: one at 1.0, right -> gap 0; ECE = (2 * 0.35 + 2 * 0.35 + 0) / 5 = 0.28
    p = np.array([[0.85, 0.15], [0.85, 0.15], [0.35, 0.65], [0.35, 0.65], [1.0, 0.0]])
    y = np.array([0, 1, 1, 1, 0])
    assert expected_calibration_error(p, y) == pytest.approx(0.28)
    table = reliability_table(p, y)
    assert [r["n"] for r in table] == [2, 2, 1]
    assert [r["accuracy"] for r in table] == [1.0, 0.5, 1.0]
    # a perfectly calibrated predictor in expectation: confidence 0.5 and half right
    assert expected_calibration_error(np.array([[0.5, 0.5]] * 4), np.array([0, 1, 0, 1])) == pytest.approx(0.0)


def test_nll_and_brier_by_hand() -> None:
    p = np.array([[0.8, 0.2], [0.4, 0.6]])
    y = np.array([0, 0])
    assert negative_log_likelihood(p, y) == pytest.approx(-(np.log(0.8) + np.log(0.4)) / 2)
    assert brier_score(p, y) == pytest.approx(((0.2**2 + 0.2**2) + (0.6**2 + 0.6**2)) / 2)
    assert negative_log_likelihood(np.array([[1.0, 0.0]]), np.array([1])) == pytest.approx(-np.log(1e-12))


def test_temperature_scaling_keeps_the_ranking_and_one_is_identity(rng: np.random.Generator) -> None:
    p = softmax(rng.normal(0, 2, size=(50, 8)), axis=1).astype(np.float32)
    assert temperature_scale(p, 1.0) is p
    for t in (0.3, 2.0, 7.0):
        q = temperature_scale(p, t)
        assert q.dtype == np.float32
        np.testing.assert_allclose(q.sum(1), 1.0, atol=1e-5)
        np.testing.assert_array_equal(q.argmax(1), p.argmax(1))
        assert (q.max(1) < p.max(1)).all() if t > 1 else (q.max(1) > p.max(1)).all()
    # equals the softmax of the scaled logits
    z = rng.normal(0, 2, size=(5, 8))
    np.testing.assert_allclose(temperature_scale(softmax(z, axis=1), 3.0), softmax(z / 3.0, axis=1), atol=1e-9)
    with pytest.raises(ValueError, match="positive"):
        temperature_scale(p, 0.0)


@pytest.mark.parametrize("true_t", [0.5, 2.5])
def test_fit_recovers_the_temperature_that_generated_the_labels(true_t: float, rng: np.random.Generator) -> None:
    z, y = overconfident(20000, rng, true_t)
    assert fit_temperature(z, y) == pytest.approx(true_t, rel=0.06)


def test_overconfident_model_ece_drops_after_fitting(rng: np.random.Generator) -> None:
    z, y = overconfident(6000, rng)
    fit_z, fit_y, test_z, test_y = z[:3000], y[:3000], z[3000:], y[3000:]
    t = fit_temperature(fit_z, fit_y)
    assert t > 1.5  # over-confident -> soften
    before, after = softmax(test_z, axis=1), softmax(test_z / t, axis=1)
    assert expected_calibration_error(before, test_y) > 0.15
    assert expected_calibration_error(after, test_y) < 0.04
    assert negative_log_likelihood(after, test_y) < negative_log_likelihood(before, test_y)
    assert brier_score(after, test_y) < brier_score(before, test_y)


def test_windows_are_scaled_then_averaged(rng: np.random.Generator) -> None:
    wins = [rng.normal(0, 2, size=(n, 8)) for n in (1, 3, 2)]
    logp = clip_log_proba(wins, 2.0)
    expected = np.log([softmax(w / 2.0, axis=1).mean(0) for w in wins])
    np.testing.assert_allclose(logp, expected, atol=1e-10)
    # one window per clip: the multi-window path and the vectorised one agree
    z, y = overconfident(500, rng)
    assert fit_temperature([r[None] for r in z], y) == pytest.approx(fit_temperature(z, y), rel=1e-3)
    # several windows per clip also recover an over-confidence
    multi = [np.stack([r, r + rng.normal(0, 0.1, 8)]) for r in z]
    assert fit_temperature(multi, y) > 1.5
    with pytest.raises(ValueError, match="labels"):
        fit_temperature(z, y[:-1])


def test_cross_fit_never_uses_the_folds_own_labels(rng: np.random.Generator) -> None:
    folds = [overconfident(400, rng) for _ in range(4)]
    logits = [[r[None] for r in z] for z, _ in folds]
    labels = [y for _, y in folds]
    cal = cross_fit(logits, labels)
    assert len(cal["folds"]) == 4 and all(f["temperature"] > 1.5 for f in cal["folds"])
    assert cal["pooled"]["after"]["ece"] < cal["pooled"]["before"]["ece"]
    assert cal["pooled"]["after"]["nll"] < cal["pooled"]["before"]["nll"]
    # scrambling fold 0's labels leaves T_0 unchanged (it is fitted on folds 1-3 only) but changes the others
    scrambled = [rng.permutation(labels[0]), *labels[1:]]
    again = cross_fit(logits, scrambled)
    assert again["folds"][0]["temperature"] == pytest.approx(cal["folds"][0]["temperature"])
    assert again["folds"][1]["temperature"] != pytest.approx(cal["folds"][1]["temperature"])
    assert len(cal["calibrated_probs"]) == 4 and cal["calibrated_probs"][0].shape == (400, 8)
    with pytest.raises(ValueError, match="2 folds"):
        cross_fit(logits[:1], labels[:1])


def test_holdout_fit_reports_before_and_after(rng: np.random.Generator) -> None:
    z, y = overconfident(2000, rng)
    res = holdout_fit([r[None] for r in z], y)
    assert res["n"] == 2000 and res["temperature"] > 1.5
    assert res["after"]["nll"] < res["before"]["nll"]
    json.dumps(res)  # stored in calibration.json and the study report


# ---- model folders ----------------------------------------------------------------------------------------------
@pytest.fixture
def model_copy(tiny_model_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))


def test_old_folders_load_uncalibrated_and_saved_temperature_is_used(model_copy: Path, make_wav,
                                                                      rng: np.random.Generator) -> None:
    assert not (model_copy / CALIBRATION).exists()
    clf = load_model(model_copy)
    assert clf.temperature == 1.0 and load_temperature(model_copy) == 1.0
    y = voiced(0.8, 16000, rng, f0=150.0)
    base = clf.predict_proba(y, sr=16000)
    clf.temperature, clf.calibration = 3.0, {"fitted_on": "test"}
    clf.save(model_copy)
    assert json.loads((model_copy / CALIBRATION).read_text()) == {"fitted_on": "test", "temperature": 3.0}
    again = load_model(model_copy)
    assert again.temperature == 3.0 and again.calibration["fitted_on"] == "test"
    hot = again.predict_proba(y, sr=16000)
    assert hot.max() < base.max() and int(hot.argmax()) == int(base.argmax())
    np.testing.assert_allclose(hot, temperature_scale(base[None], 3.0)[0], atol=1e-5)  # one window: exact
    # files (predict, service, batch) and the stream/timeline go through the same calibrated path
    wav = make_wav("clip.wav", y, 16000)
    assert again.predict_file(wav)["confidence"] == pytest.approx(float(hot.max()), abs=1e-3)
    from voxemo.inference.timeline import timeline

    segs = timeline(wav, again).segments
    assert segs and max(s.confidence for s in segs) < base.max()
    # saving it uncalibrated again removes the stale file
    again.temperature, again.calibration = 1.0, {}
    again.save(model_copy)
    assert not (model_copy / CALIBRATION).exists()


@pytest.mark.parametrize("content", ["{not json", '{"temperature": -1}', '{"temperature": "hot"}', "{}"])
def test_bad_calibration_file_is_a_one_line_model_error(model_copy: Path, content: str) -> None:
    (model_copy / CALIBRATION).write_text(content)
    with pytest.raises(ModelError) as err:
        load_model(model_copy)
    assert CALIBRATION in str(err.value) and "\n" not in str(err.value)


def test_onnx_export_carries_the_temperature(model_copy: Path, tmp_path: Path, rng: np.random.Generator) -> None:
    from voxemo.inference.torch_backend import export_onnx

    clf = load_model(model_copy)
    clf.temperature = 2.5
    onnx = load_model(export_onnx(clf, tmp_path / "m.onnx"), backend="onnx")
    assert onnx.temperature == 2.5
    y = voiced(1.5, 16000, rng)
    np.testing.assert_allclose(onnx.predict_proba(y, sr=16000), clf.predict_proba(y, sr=16000), atol=1e-4)


# ---- evaluation and training produce and store calibration -------------------------------------------------------
def tiny_study(rng: np.random.Generator, n_speakers: int):
    from conftest import voxemo_records
    from voxemo.core.config import AudioConfig, Config, ModelConfig, TrainConfig
    from voxemo.core.labels import EMOTIONS
    from voxemo.dsp.features import extract

    cfg = Config(audio=AudioConfig(duration=1.0), model=ModelConfig(channels=(4,)),
                 train=TrainConfig(epochs=2, batch_size=32, val_speakers=2))
    recs = voxemo_records(n_speakers, clips_per_speaker=8)
    # some clips longer than the 1 s segment, so that clips have several windows
    specs = [extract(voiced(0.5 + (i % 3) * 0.6, 16000, rng, f0=100 + 20 * EMOTIONS.index(r.emotion)), 16000,
                     cfg.audio, cfg.features) for i, r in enumerate(recs)]
    return recs, specs, cfg


def test_cnn_evaluation_reports_cross_fitted_calibration(tmp_path: Path, rng: np.random.Generator) -> None:
    from voxemo.experiment.evaluate import evaluate
    from voxemo.reports.evaluation import write_evaluation

    recs, specs, cfg = tiny_study(rng, 12)
    result = evaluate(recs, specs, cfg, "actor-6fold", jobs=1, progress=False)
    cal = result.calibration
    assert len(cal["folds"]) == 6 and all(0.01 <= f["temperature"] <= 100 for f in cal["folds"])
    # the reported "before" probabilities are exactly the evaluation's clip probabilities
    conf = np.array([p.confidence for p in result.predictions])
    pooled_before = sum(r["n"] * r["confidence"] for r in cal["reliability"]["before"]) / len(recs)
    assert pooled_before == pytest.approx(conf.mean(), abs=1e-5)
    assert all(p.confidence_calibrated is not None for p in result.predictions)
    out = write_evaluation(result, tmp_path)
    assert (out / "reliability.png").stat().st_size > 1000
    assert "## Calibration" in (out / "report.md").read_text()
    assert "confidence_calibrated" in (out / "predictions.csv").read_text().splitlines()[0]


def test_final_model_gets_the_validation_temperature(tmp_path: Path, rng: np.random.Generator) -> None:
    from voxemo.experiment.training import apply_choice, compare_variants, train_final

    recs, specs, cfg = tiny_study(rng, 6)
    variants = compare_variants(recs, specs, cfg, jobs=1, progress=False)
    cal = variants.calibration
    assert cal["n"] == sum(r.speaker in variants.val_speakers for r in recs)
    assert all(s in cal["fitted_on"] for s in variants.val_speakers)
    assert cal["after"]["nll"] <= cal["before"]["nll"] + 1e-9  # T minimises NLL there; T = 1 is a candidate
    json.dumps(variants.to_dict())  # variants.json stays writable (no arrays left in it)
    cfg, epochs = apply_choice(cfg, variants)
    clf = train_final(recs, specs, cfg, epochs, progress=False, calibration=cal)
    clf.save(tmp_path / "model")
    stored = json.loads((tmp_path / "model" / CALIBRATION).read_text())
    assert stored["temperature"] == pytest.approx(cal["temperature"]) and stored["fitted_on"] == cal["fitted_on"]
    assert load_model(tmp_path / "model").temperature == pytest.approx(cal["temperature"])
