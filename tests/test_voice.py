"""The shipped ``voice`` model (a frozen pretrained voice encoder with a linear head): both backends, adaptation
without labels, fine-tuning, head fitting, and its config."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import corpus_root
from voxemo.apps.cli import main
from voxemo.core.config import Config, ModelConfig
from voxemo.core.errors import ConfigError, ModelError
from voxemo.inference.adaptset import adaptation_set
from voxemo.inference.loading import load_model
from voxemo.inference.onnx_backend import OnnxClassifier
from voxemo.inference.torch_backend import EmotionClassifier
from voxemo.io.files import file_digest
from voxemo.nn.train import build_model
from voxemo.nn.voice import (
    VoiceNet,
    adapt_voice,
    clip_windows,
    encoder_weights_path,
    fit_head_on,
    voice_config,
    window_features,
)


def ravdess_clips(root: Path, actors: tuple[int, ...]) -> list[tuple[str, str]]:
    names = {1: "neutral", 2: "calm", 3: "happy", 4: "sad", 5: "angry", 6: "fearful", 7: "disgust", 8: "surprised"}
    out = []
    for a in actors:
        for f in sorted((root / f"Actor_{a:02d}").iterdir()):
            out.append((str(f), names[int(f.name.split("-")[2])]))
    return out


@pytest.fixture(scope="module")
def voice_torch() -> EmotionClassifier:
    clf = load_model("voice", backend="torch")
    assert isinstance(clf, EmotionClassifier)
    return clf


def test_the_voice_profile_runs_the_same_on_onnx_and_torch(real_ravdess: Path, voice_torch: EmotionClassifier) -> None:
    onnx = load_model("voice")
    assert isinstance(onnx, OnnxClassifier) and voice_torch.config.model.arch == "voice"
    assert list(onnx.classes_) == list(voice_torch.classes_) and len(onnx.classes_) == 8
    files = [f for f, _ in ravdess_clips(real_ravdess, (3,))][:12]
    a, b = onnx.predict_proba(files), voice_torch.predict_proba(files)
    np.testing.assert_allclose(a, b, atol=1e-4)
    np.testing.assert_allclose(a.sum(axis=1), 1.0, atol=1e-5)
    assert onnx.temperature == pytest.approx(voice_torch.temperature) and onnx.temperature != 1.0


def test_predict_takes_the_voice_profile_by_name(real_ravdess: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip = next(f for f, e in ravdess_clips(real_ravdess, (1,)) if e == "angry")
    assert main(["predict", clip, "--model", "voice", "--json"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[0])
    assert row["path"] == clip and row["emotion"] in load_model("voice").classes_


def test_adaptation_moves_only_the_standardisation_and_keeps_the_original(voice_torch: EmotionClassifier,
                                                                          rng: np.random.Generator) -> None:
    before = copy.deepcopy(voice_torch.model.state_dict())
    specs = [(rng.normal(-30, 12, (40, int(rng.integers(60, 400))))).astype(np.float32) for _ in range(40)]
    aset = adaptation_set([f"clip{i}" for i in range(len(specs))], specs, voice_torch.config, min_seconds=0)
    adapted = voice_torch.adapted(aset, prior_seconds=0.0)
    after = adapted.model.state_dict()
    for k, v in before.items():  # the original is untouched
        torch.testing.assert_close(voice_torch.model.state_dict()[k], v)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"embed_mean", "embed_std"}
    # with the whole weight on the target, the standardisation is exactly the target windows' moments
    raw = window_features(voice_torch.model, clip_windows(specs, voice_torch.config)[0]).astype(np.float64)
    np.testing.assert_allclose(after["embed_mean"].numpy(), raw.mean(axis=0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(after["embed_std"].numpy(), raw.std(axis=0), rtol=1e-3, atol=1e-5)
    assert adapted.adaptation is not None and adapted.adaptation["layers"][0][0]["layer"] == "features"


def test_adaptation_weight_shrinks_towards_the_training_moments(voice_torch: EmotionClassifier,
                                                                rng: np.random.Generator) -> None:
    specs = [(rng.normal(-30, 12, (40, 200))).astype(np.float32) for _ in range(10)]
    nets = [copy.deepcopy(voice_torch.model) for _ in range(2)]
    assert isinstance(nets[0], VoiceNet) and isinstance(nets[1], VoiceNet)
    small = adapt_voice(nets[0], specs, voice_torch.config, 0.05)
    full = adapt_voice(nets[1], specs, voice_torch.config, 1.0)
    assert 0 < small.mean_shift < full.mean_shift
    with pytest.raises(ValueError, match="weight"):
        adapt_voice(copy.deepcopy(nets[0]), specs, voice_torch.config, 0.0)


def test_an_adapted_voice_model_saves_a_folder_every_command_loads(real_ravdess: Path, tmp_path: Path,
                                                                   voice_torch: EmotionClassifier) -> None:
    files = [f for f, _ in ravdess_clips(real_ravdess, (5, 6))]
    base = voice_torch.model_dir
    assert base is not None
    digest = file_digest(base / "weights.pt")
    out = tmp_path / "adapted"
    assert main(["adapt", *files, "--model", "voice", "--out", str(out)]) == 0
    assert file_digest(base / "weights.pt") == digest
    onnx = load_model(out)
    assert isinstance(onnx, OnnxClassifier) and onnx.adaptation is not None
    assert onnx.adaptation["clips"] == len(files)
    p_adapted, p_base = onnx.predict_proba(files[:4]), load_model("voice").predict_proba(files[:4])
    assert not np.allclose(p_adapted, p_base, atol=1e-3)


def test_fine_tuning_the_voice_model_trains_the_head_only(real_ravdess: Path, voice_torch: EmotionClassifier) -> None:
    pairs = [(f, e) for f, e in ravdess_clips(real_ravdess, (7,)) if e in ("angry", "sad", "happy", "neutral")][:16]
    tuned = voice_torch.fine_tune(pairs)
    assert isinstance(tuned, EmotionClassifier)
    before, after = voice_torch.model.state_dict(), tuned.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"classifier.weight", "classifier.bias"}


def test_the_head_fitted_on_actors_predicts_them(real_ravdess: Path, voice_torch: EmotionClassifier) -> None:
    clips = ravdess_clips(real_ravdess, (1, 2))
    config = voice_torch.config
    net = build_model(config, 8)
    assert isinstance(net, VoiceNet)
    net.lstm.load_state_dict(voice_torch.model.lstm.state_dict())  # the shipped copy of the pretrained encoder
    clf = EmotionClassifier(net, config, list(voice_torch.classes_))
    specs = [clf.features(f) for f, _ in clips]
    segments, clip = clip_windows(specs, config)
    y = np.array([list(clf.classes_).index(e) for _, e in clips])
    fit_head_on(net, window_features(net, segments), y[clip], c=1.0)
    accuracy = float((clf.predict_proba([f for f, _ in clips]).argmax(1) == y).mean())
    assert accuracy > 0.8  # its own training clips
    with pytest.raises(ModelError, match="classes"):
        fit_head_on(net, window_features(net, segments[:3]), y[clip][:3])


def test_voice_config_and_arch_checks() -> None:
    config = voice_config()
    assert (config.audio.sample_rate, config.features.n_mels, config.model.arch) == (16000, 40, "voice")
    with pytest.raises(ConfigError, match="arch"):
        ModelConfig(arch="transformer")
    with pytest.raises(ModelError, match="40 mel"):
        build_model(Config.from_dict({"model": {"arch": "voice"}}), 8)  # the CNN's 64 mel bands


def test_building_without_the_encoder_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(ModelError, match="pip install --no-deps resemblyzer"):
        encoder_weights_path()




def test_evaluate_scores_a_trained_model_without_training_it(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from voxemo.corpus.sources import load_source
    from voxemo.experiment.crossscore import score_cross_corpus

    emodb = corpus_root("emodb")
    if emodb is None:
        pytest.skip("Emo-DB not found (set VOXEMO_EMODB or provide ../shared/data/emodb)")
    test = tmp_path / "emodb"
    test.mkdir()
    for f in sorted(emodb.glob("*.flac")):
        if f.name[:2] in ("03", "16") and f.name[5] in "WTFN":  # two speakers, angry/sad/happy/neutral
            (test / f.name).symlink_to(f)
    out = tmp_path / "scored"
    assert main(["evaluate", "--trained", "voice", "--test", str(test), "--adapt", "--jobs", "1",
                 "--out", str(out)]) == 0
    line = capsys.readouterr().out
    assert line.startswith(str(load_model("voice").model_dir) + " -> emodb")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train"] == {} and metrics["model"].endswith("voice") and "adapted" in metrics
    assert "not trained here" in (out / "report.md").read_text()
    # the score is that of the model's own predictions, as `voxemo predict` makes them
    records = load_source(str(test), "emodb", progress=False)
    clf = load_model("voice")
    probs = clf.predict_proba([r.path for r in records])
    direct = score_cross_corpus(records, probs, list(clf.classes_), list(clf.classes_)).four_class
    assert direct is not None
    assert metrics["four_class"]["uar"] == pytest.approx(direct.uar, abs=1e-9)


def test_evaluate_trained_needs_test_data_and_no_training_data(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--trained", "voice", "--out", "x"]) == 2
    assert "--trained MODEL scores a trained model" in capsys.readouterr().err


def test_the_cnn_commands_refuse_a_voice_recipe(capsys: pytest.CaptureFixture[str]) -> None:
    from voxemo.nn.train import train_model

    assert main(["evaluate", "--set", "model.arch=voice", "--out", "x"]) == 2
    assert "model.arch=voice is not trained here" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="not trained by this loop"):
        train_model([np.zeros((40, 50), np.float32)], np.array([0]), 8, voice_config())
