"""The ``voice`` family (a frozen pretrained speaker encoder, shipped once, with a linear head): the shipped models
are heads that refer to the one encoder file, trained by ``voxemo train --model voice``, adapted and fine-tuned by
the encoder families' one mechanism (:mod:`voxemo.nn.probe`)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import corpus_root
from voxemo.apps.cli import main
from voxemo.core.config import ModelConfig
from voxemo.core.errors import ConfigError, ModelError
from voxemo.inference.adaptset import LabelledSet, adaptation_set
from voxemo.inference.encoders import ENCODERS, file_sha256
from voxemo.inference.loading import default_model_dir, load_model
from voxemo.inference.probe_backend import ProbeClassifier
from voxemo.nn.probe import FAMILIES


def ravdess_clips(root: Path, actors: tuple[int, ...]) -> list[tuple[str, str]]:
    names = {1: "neutral", 2: "calm", 3: "happy", 4: "sad", 5: "angry", 6: "fearful", 7: "disgust", 8: "surprised"}
    out = []
    for a in actors:
        for f in sorted((root / f"Actor_{a:02d}").iterdir()):
            out.append((str(f), names[int(f.name.split("-")[2])]))
    return out


@pytest.fixture(scope="module")
def voice() -> ProbeClassifier:
    clf = load_model("voice")
    assert isinstance(clf, ProbeClassifier)
    return clf


def test_the_voice_models_are_heads_on_one_shared_encoder(voice: ProbeClassifier, real_ravdess: Path) -> None:
    for name in ("voice", "voice-telephone"):
        folder = default_model_dir(name)
        assert not list(folder.glob("*.onnx")) and not list(folder.glob("*.pt"))  # no copy of any network
        assert json.loads((folder / "encoder.json").read_text()) == {
            "name": "resemblyzer-voice", "sha256": ENCODERS["resemblyzer-voice"].sha256}
    assert file_sha256(ENCODERS["resemblyzer-voice"].path()) == ENCODERS["resemblyzer-voice"].sha256
    assert voice.config.model.arch == "voice" and len(voice.classes_) == 8 and voice.temperature != 1.0
    files = [f for f, _ in ravdess_clips(real_ravdess, (3,))][:12]
    probs = voice.predict_proba(files)
    assert probs.shape == (12, 8) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.skipif(importlib.util.find_spec("resemblyzer") is None or importlib.util.find_spec("torch") is None,
                    reason="the encoder's source weights: pip install --no-deps resemblyzer==0.1.4 (and torch)")
def test_the_shipped_encoder_file_is_the_pretrained_encoder(tmp_path: Path) -> None:
    import onnxruntime as ort
    import torch

    from voxemo.nn.voice import build_encoder, export_encoder

    encoder = build_encoder()
    x = (-60 * np.random.default_rng(0).random((3, 40, 161))).astype(np.float32)
    with torch.no_grad():
        expected = encoder(torch.from_numpy(x)).numpy()
    session = ort.InferenceSession(str(ENCODERS["resemblyzer-voice"].path()), providers=["CPUExecutionProvider"])
    got = np.concatenate([session.run(None, {"logmel": x[i : i + 1]})[0] for i in range(3)])
    np.testing.assert_allclose(got, expected, atol=1e-4)
    rebuilt = export_encoder(encoder, tmp_path / "voice.onnx")  # the build is reproducible byte for byte
    assert file_sha256(rebuilt) == ENCODERS["resemblyzer-voice"].sha256


def test_predict_takes_the_voice_profile_by_name(real_ravdess: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip = next(f for f, e in ravdess_clips(real_ravdess, (1,)) if e == "angry")
    assert main(["predict", clip, "--model", "voice", "--json"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[0])
    assert row["path"] == clip and row["emotion"] in load_model("voice").classes_


def test_adaptation_moves_only_the_standardisation_and_keeps_the_original(voice: ProbeClassifier,
                                                                          rng: np.random.Generator) -> None:
    before = {k: getattr(voice.head, k).copy() for k in ("mean", "std", "weight", "bias")}
    specs = [(rng.normal(-30, 12, (40, int(rng.integers(60, 400))))).astype(np.float32) for _ in range(40)]
    aset = adaptation_set([f"clip{i}" for i in range(len(specs))], specs, voice.config, min_seconds=0)
    adapted = voice.adapted(aset, prior_seconds=0.0)
    assert isinstance(adapted, ProbeClassifier)
    for k, v in before.items():  # the original is untouched
        np.testing.assert_array_equal(getattr(voice.head, k), v)
    np.testing.assert_array_equal(adapted.head.weight, before["weight"])
    np.testing.assert_array_equal(adapted.head.bias, before["bias"])
    # with the whole weight on the target, the standardisation is exactly the target windows' moments
    raw = voice.clip_features(specs).astype(np.float64)
    np.testing.assert_allclose(adapted.head.mean, raw.mean(axis=0), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(adapted.head.std, raw.std(axis=0), rtol=1e-5, atol=1e-8)
    assert adapted.adaptation is not None and adapted.adaptation.layers[0][0]["layer"] == "head standardisation"
    small = voice.adapted(aset, prior_seconds=1e6)  # little target speech against a large prior: a small move
    assert 0 < voice.head.shift(small.head)[0] < voice.head.shift(adapted.head)[0]


def test_an_adapted_voice_model_saves_a_folder_every_command_loads(real_ravdess: Path, tmp_path: Path,
                                                                   voice: ProbeClassifier) -> None:
    files = [f for f, _ in ravdess_clips(real_ravdess, (5, 6))]
    head = voice.model_dir / "head.npz"  # type: ignore[operator]
    digest = file_sha256(head)
    out = tmp_path / "adapted"
    assert main(["adapt", *files, "--model", "voice", "--out", str(out)]) == 0
    assert file_sha256(head) == digest
    assert {p.name for p in out.iterdir()} >= {"head.npz", "encoder.json", "adaptation.json"}
    assert not list(out.glob("*.onnx"))  # the encoder stays shared
    adapted = load_model(out)
    assert isinstance(adapted, ProbeClassifier) and adapted.adaptation is not None
    assert adapted.adaptation.clips == len(files)
    p_adapted, p_base = adapted.predict_proba(files[:4]), voice.predict_proba(files[:4])
    assert not np.allclose(p_adapted, p_base, atol=1e-3)


def test_fine_tuning_the_voice_model_refits_the_linear_layer_only(real_ravdess: Path,
                                                                  voice: ProbeClassifier) -> None:
    pairs = [(f, e) for f, e in ravdess_clips(real_ravdess, (7,)) if e in ("angry", "sad", "happy", "neutral")][:16]
    tuned = voice.fine_tune(pairs)
    assert isinstance(tuned, ProbeClassifier)
    np.testing.assert_array_equal(tuned.head.mean, voice.head.mean)
    assert not np.allclose(tuned.head.weight, voice.head.weight)
    with pytest.raises(ModelError, match="refits its linear layer"):
        voice.tuned(LabelledSet((), (), (), ()), recipe=object())  # type: ignore[arg-type]  # the CNN's recipe


def test_voice_config_and_arch_checks() -> None:
    config = FAMILIES["voice"].config()
    assert (config.audio.sample_rate, config.features.n_mels, config.model.arch) == (16000, 40, "voice")
    with pytest.raises(ConfigError, match="arch"):
        ModelConfig(arch="transformer")


def test_building_without_the_encoder_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    from voxemo.nn.voice import encoder_weights_path

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
    pytest.importorskip("torch")
    from voxemo.nn.train import train_model

    assert main(["evaluate", "--set", "model.arch=voice", "--out", "x"]) == 2
    assert "model.arch=voice is not trained here" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="not trained by this loop"):
        train_model([np.zeros((40, 50), np.float32)], np.array([0]), 8, FAMILIES["voice"].config())
