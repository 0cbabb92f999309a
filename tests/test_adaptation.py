"""Unsupervised adaptation: the statistics it moves, the classifiers and folders it makes, and its bad inputs."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import voiced
from voxemo.apps.cli import main
from voxemo.core.config import ModelConfig
from voxemo.core.errors import AdaptationError, ModelError
from voxemo.inference.adaptset import AdaptationRecord, AdaptationSet, adaptation_set
from voxemo.inference.loading import default_model_dir, load_model
from voxemo.inference.onnx_backend import OnnxClassifier
from voxemo.inference.torch_backend import EmotionClassifier
from voxemo.io.files import file_digest
from voxemo.io.modelfile import ADAPTATION, MODEL_CARD, SOURCE_STATS
from voxemo.nn.adapt import adapt_norm_stats, joined_chunks, measure_source, stats_arrays, stats_from_arrays
from voxemo.nn.model import EmotionCNN, EmotionEnsemble


def small_cnn(seed: int) -> EmotionCNN:
    torch.manual_seed(seed)
    cnn = EmotionCNN(16, 4, ModelConfig(channels=(4, 8), pool_first=True))
    for m in cnn.modules():  # training-like running statistics, not the defaults 0 and 1
        if isinstance(m, torch.nn.BatchNorm2d):
            assert m.running_mean is not None and m.running_var is not None
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    cnn.feature_mean.fill_(-40.0)
    cnn.feature_std.fill_(15.0)
    return cnn.eval()


def clips(rng: np.random.Generator, n: int = 12, offset: float = 0.0) -> list[np.ndarray]:
    return [(rng.normal(-35, 10, (16, int(rng.integers(20, 90)))) + offset).astype(np.float32) for _ in range(n)]


def test_chunks_hold_every_real_frame_and_no_padding(rng: np.random.Generator) -> None:
    specs = clips(rng)
    chunks = joined_chunks(specs, chunk_frames=50)
    assert sum(c.shape[1] for c in chunks) == sum(s.shape[1] for s in specs)
    lengths = [c.shape[1] for c in chunks]
    assert max(lengths) <= 50 and max(lengths) - min(lengths) <= 1  # equal: none too short to pool
    np.testing.assert_array_equal(np.concatenate(chunks, axis=1), np.concatenate(specs, axis=1))


def test_adapting_to_the_training_speech_changes_nothing(rng: np.random.Generator) -> None:
    model = EmotionEnsemble([small_cnn(0), small_cnn(1)])
    specs = clips(rng)
    source = measure_source(model, specs)
    before = copy.deepcopy(model.state_dict())
    adapt_norm_stats(model, specs, source, weight=1.0)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v.float(), before[k].float(), atol=2e-4, rtol=2e-4, msg=k)


def test_an_offset_domain_is_mapped_back_to_the_training_one(rng: np.random.Generator) -> None:
    """Speech 12 dB louder in every mel bin: after adaptation the network's outputs on it are the original outputs
    on the original speech (windows without padding, so the offset is everywhere)."""
    cnn = small_cnn(2)
    specs = clips(rng, n=20)
    source = measure_source(cnn, specs)
    shifted = [s + 12.0 for s in specs]
    x, x_shifted = (torch.from_numpy(np.stack([s[:, :20] for s in group])) for group in (specs, shifted))
    with torch.no_grad():
        want, unadapted = cnn(x), cnn(x_shifted)
    adapted = copy.deepcopy(cnn)
    adapt_norm_stats(adapted, shifted, [source[0]], weight=1.0)
    with torch.no_grad():
        got = adapted(x_shifted)
    error, unadapted_error = float((got - want).abs().max()), float((unadapted - want).abs().max())
    assert error < 1e-3 and unadapted_error > 30 * error, (error, unadapted_error)
    assert float(adapted.feature_mean.mean() - cnn.feature_mean.mean()) == pytest.approx(12.0, abs=0.01)


def test_shrinkage_moves_part_of_the_way(rng: np.random.Generator) -> None:
    cnn = small_cnn(3)
    specs = clips(rng)
    source = measure_source(cnn, specs)
    half = copy.deepcopy(cnn)
    adapt_norm_stats(half, [s + 10.0 for s in specs], source, weight=0.5)
    assert float((half.feature_mean - cnn.feature_mean).mean()) == pytest.approx(5.0, abs=0.01)
    with pytest.raises(ValueError, match="weight"):
        adapt_norm_stats(cnn, specs, source, weight=0.0)
    with pytest.raises(ValueError, match="too few to adapt on"):
        adapt_norm_stats(cnn, [specs[0][:, :20]], source, weight=1.0)
    adapt_norm_stats(copy.deepcopy(cnn), [specs[0][:, :65]], source, weight=1.0, chunk_frames=64)  # no 1-frame chunk


def test_source_statistics_round_trip(rng: np.random.Generator) -> None:
    stats = measure_source(EmotionEnsemble([small_cnn(0), small_cnn(1)]), clips(rng))
    back = stats_from_arrays(stats_arrays(stats))
    assert len(back) == 2 and back[1].frames == stats[1].frames
    for a, b in zip(stats, back):
        for x, y in zip(a.means + a.variances, b.means + b.variances):
            np.testing.assert_array_equal(x, y)


def test_weight_grows_with_the_amount_of_speech() -> None:
    def aset(seconds: float) -> AdaptationSet:
        return AdaptationSet((), (), (), seconds)

    assert aset(1000).weight(1000) == 0.5
    assert aset(100).weight(1000) < aset(3000).weight(1000) < 1
    assert aset(5).weight(0) == 1.0


def test_too_little_or_no_speech_is_one_line() -> None:
    cfg = load_model("fast").config
    with pytest.raises(AdaptationError, match=r"too little speech to adapt on: 2\.\d s in 1 file"):
        adaptation_set(["a.wav"], [np.zeros((64, 95), np.float32)], cfg)
    with pytest.raises(AdaptationError, match=r"no usable speech to adapt on: 2 input\(s\), all skipped \(e\.g\. x"):
        adaptation_set([], [], cfg, skipped=["x: no speech found", "y: unreadable"])


def speech_files(make_wav, rng: np.random.Generator, n: int, seconds: float = 3.0) -> list[Path]:  # type: ignore[no-untyped-def]
    return [make_wav(f"talk/{i:02d}.wav", voiced(seconds, 16000, rng, f0=110.0 + 9 * i), 16000) for i in range(n)]


def test_classifier_adapt_returns_a_new_model_and_leaves_the_original(make_wav, rng: np.random.Generator,  # type: ignore[no-untyped-def]
                                                                      tmp_path: Path) -> None:
    files = speech_files(make_wav, rng, 14)
    bad = make_wav("talk/broken.wav", np.zeros(10, np.float32))
    (tmp_path / "talk" / "notes.wav").write_bytes(b"not audio at all")
    clf = load_model("fast")
    assert isinstance(clf, OnnxClassifier)
    before = clf.predict_proba(str(files[0]))
    adapted = clf.adapt([tmp_path / "talk"], jobs=1)
    assert isinstance(adapted, OnnxClassifier) and adapted is not clf
    np.testing.assert_array_equal(clf.predict_proba(str(files[0])), before)  # the original is unchanged
    assert np.abs(adapted.predict_proba(str(files[0])) - before).max() > 1e-3
    record = adapted.adaptation
    assert record is not None and record.clips == 14 and record.skipped == 2 and bad.exists()
    assert record.weight is not None and 0 < record.weight < 1 and len(record.list_sha256) == 64
    assert AdaptationRecord.from_dict(json.loads(json.dumps(record.to_dict()))) == record
    torch_adapted = load_model("fast", backend="torch").adapt([str(f) for f in files], jobs=1)
    assert isinstance(torch_adapted, EmotionClassifier)
    np.testing.assert_allclose(torch_adapted.predict_proba(str(files[0])), adapted.predict_proba(str(files[0])),
                               atol=1e-4)


def test_adapt_command_writes_a_complete_model_folder(make_wav, rng: np.random.Generator, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    files = speech_files(make_wav, rng, 14)
    shipped = {p.name: file_digest(p) for p in default_model_dir("fast").iterdir() if p.is_file()}
    out = tmp_path / "adapted"
    assert main(["-q", "adapt", str(tmp_path / "talk"), "--model", "fast", "--out", str(out), "--jobs", "1"]) == 0
    assert capsys.readouterr().out.startswith("adapted on 14 clips (")
    assert {p.name: file_digest(p) for p in default_model_dir("fast").iterdir() if p.is_file()} == shipped
    for name in ("weights.pt", "model.onnx", "config.json", "labels.json", "calibration.json", SOURCE_STATS,
                 ADAPTATION, MODEL_CARD):
        assert (out / name).is_file(), name
    record = json.loads((out / ADAPTATION).read_text())
    assert record["clips"] == 14 and record["base_model"].endswith("fast")
    assert "14 (0 skipped" in (out / MODEL_CARD).read_text()
    auto, torch_clf = load_model(out), load_model(out, backend="torch")
    assert auto.backend == "onnx" and auto.adaptation is not None  # its model.onnx matches its weights
    assert auto.adaptation.to_dict() == record
    np.testing.assert_allclose(auto.predict_proba(str(files[1])), torch_clf.predict_proba(str(files[1])), atol=1e-4)
    assert main(["-q", "predict", str(files[1]), "--model", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["speech"] is True


def test_adapt_command_errors_are_one_line(make_wav, rng: np.random.Generator, tmp_path: Path,  # type: ignore[no-untyped-def]
                                           capsys: pytest.CaptureFixture[str]) -> None:
    make_wav("quiet/a.wav", np.zeros(16000, np.float32), 16000)
    (tmp_path / "quiet" / "b.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    speech_files(make_wav, rng, 2)
    cases = [
        (["adapt", str(tmp_path / "quiet"), "--out", str(tmp_path / "o1")], "no usable speech to adapt on: 2 input"),
        (["adapt", str(tmp_path / "talk"), "--out", str(tmp_path / "o2")], "too little speech to adapt on"),
        (["adapt", str(tmp_path / "none"), "--out", str(tmp_path / "o3")], "no such file or folder"),
        (["adapt", str(tmp_path / "talk"), "--out", str(default_model_dir())], "is the model being adapted"),
        (["predict", "--adapt", str(tmp_path / "talk")], "too little speech to adapt on"),
    ]
    for argv, message in cases:
        assert main(["-q", *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_a_model_without_training_statistics_or_folder_cannot_adapt(tiny_model_dir: Path, tmp_path: Path) -> None:
    from voxemo.inference.torch_backend import export_onnx

    aset = AdaptationSet((np.zeros((64, 200), np.float32),), ("a.wav",), (), 60.0)
    with pytest.raises(ModelError, match=f"has no {SOURCE_STATS}"):
        load_model(tiny_model_dir).adapted(aset)
    onnx_file = export_onnx(load_model(tiny_model_dir), tmp_path / "tiny.onnx")
    with pytest.raises(ModelError, match="needs the model folder"):
        load_model(onnx_file).adapted(aset)


def test_predict_adapt_keeps_the_order_and_resumes(make_wav, rng: np.random.Generator,  # type: ignore[no-untyped-def]
                                                                tmp_path: Path) -> None:
    files = speech_files(make_wav, rng, 12)
    make_wav("talk/05b_silent.wav", np.zeros(16000, np.float32), 16000)
    out = tmp_path / "pred.csv"
    assert main(["-q", "predict", "--model", "fast", "--adapt", str(tmp_path / "talk"), str(tmp_path / "missing.wav"),
                 "--output", str(out), "--jobs", "1"]) == 1
    lines = out.read_text().splitlines()
    assert len(lines) == 1 + 14
    paths = [line.split(",")[0] for line in lines[1:]]
    assert paths[:13] == sorted(str(p) for p in [*files, tmp_path / "talk" / "05b_silent.wav"])
    assert paths[13].endswith("missing.wav") and "no such file" in lines[14]
    adapted = load_model("fast").adapt([str(f) for f in files], jobs=1)
    want = adapted.predict_result(str(files[3]))
    row = next(line for line in lines if line.startswith(str(files[3])))
    assert f"{want.emotion},{want.confidence}" in row  # type: ignore[union-attr]
    # a killed run goes on where it stopped, with the same adapted model: the adaptation is repeated in full
    out.write_text("\n".join(lines[:5]) + "\n" + lines[5][:20])
    assert main(["-q", "predict", "--model", "fast", "--adapt", str(tmp_path / "talk"), str(tmp_path / "missing.wav"),
                 "--output", str(out), "--jobs", "1", "--resume"]) == 1
    assert out.read_text().splitlines() == lines


def test_adapt_command_fine_tunes_on_labelled_clips(make_wav, rng: np.random.Generator, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    rows = ["path,label,speaker"]
    for i, emotion in enumerate(["angry", "sad", "calm", "boredom"] * 3):
        path = make_wav(f"labelled/{i:02d}.wav", voiced(2.0, 16000, rng, f0=100.0 + 10 * i), 16000)
        rows.append(f"{path},{emotion},s{i % 2}")
    manifest = tmp_path / "labelled.csv"
    manifest.write_text("\n".join(rows) + "\n")
    out = tmp_path / "tuned"
    assert main(["-q", "adapt", "--labelled", str(manifest), "--model", "fast", "--out", str(out), "--jobs", "1"]) == 0
    assert capsys.readouterr().out.startswith("fine-tuned on 9 labelled clips (3 skipped)")
    record = json.loads((out / ADAPTATION).read_text())
    assert record["per_class"] == {"calm": 3, "sad": 3, "angry": 3} and record["base_model"].endswith("fast")
    assert "# Fine-tuned voxemo model" in (out / MODEL_CARD).read_text()
    tuned, shipped = load_model(out), load_model("fast")
    clip = str(tmp_path / "labelled" / "00.wav")
    assert tuned.predict_proba(clip)[list(tuned.classes_).index("angry")] > shipped.predict_proba(clip)[
        list(shipped.classes_).index("angry")]
    assert main(["-q", "adapt", "--out", str(tmp_path / "none")]) == 2
    assert "nothing to adapt on" in capsys.readouterr().err


def test_shipped_models_carry_their_training_statistics_and_load_by_name() -> None:
    from voxemo.inference.loading import PROFILES

    for name in PROFILES:
        clf = load_model(None if name == "default" else name)
        assert clf.backend == "onnx" and clf.model_dir == default_model_dir(name)
        # a CNN keeps its training speech's statistics apart; the voice model's are its feature standardisation
        assert (default_model_dir(name) / SOURCE_STATS).is_file() == (clf.config.model.arch == "cnn")
        assert (default_model_dir(name) / MODEL_CARD).is_file()
    phone = load_model("telephone", backend="torch")
    assert isinstance(phone, EmotionClassifier) and phone.source_stats is not None
    assert phone.config.augment.telephone == 0.3 and phone.config.model.members == 3


def test_predict_adapt_by_speaker_adapts_each_voice_on_its_own(make_wav, rng: np.random.Generator,  # type: ignore[no-untyped-def]
                                                                tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                caplog: pytest.LogCaptureFixture) -> None:
    """``--adapt-by speaker``: each speaker of a manifest gets the model adapted on its own speech; a speaker with
    too little speech gets the model adapted on all inputs, and says so; inputs without a manifest are refused."""
    low = [make_wav(f"a/{i:02d}.wav", voiced(3.0, 16000, rng, f0=95.0 + 3 * i), 16000) for i in range(12)]
    high = [make_wav(f"b/{i:02d}.wav", voiced(3.0, 16000, rng, f0=210.0 + 5 * i), 16000) for i in range(12)]
    lone = make_wav("c/00.wav", voiced(3.0, 16000, rng, f0=150.0), 16000)
    manifest = tmp_path / "calls.csv"
    manifest.write_text("path,speaker\n" + "".join(f"{p},A\n" for p in low) + "".join(f"{p},B\n" for p in high)
                        + f"{lone},C\n")
    with caplog.at_level("WARNING"):
        assert main(["-q", "predict", "--adapt-by", "speaker", "--prior-seconds", "0", "--json", "--jobs", "1",
                     str(manifest)]) == 0
    got = {r["path"]: r["probabilities"] for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert len(got) == 25 and "speaker C: too little speech" in caplog.text
    clf = load_model()
    own = clf.adapt([str(p) for p in low], prior_seconds=0, jobs=1).predict_proba(str(low[0]))
    everyone = clf.adapt([str(p) for p in low + high + [lone]], prior_seconds=0, jobs=1)
    row = np.array([got[str(low[0])][c] for c in clf.classes_])
    assert np.abs(row - own).max() < 2e-3
    assert np.abs(own - everyone.predict_proba(str(low[0]))).max() > 0.01  # its own voice, not the pooled one
    lone_row = np.array([got[str(lone)][c] for c in clf.classes_])
    assert np.abs(lone_row - everyone.predict_proba(str(lone))).max() < 2e-3
    assert main(["-q", "predict", "--adapt-by", "speaker", str(tmp_path / "a")]) == 2
    assert "give manifests" in capsys.readouterr().err
