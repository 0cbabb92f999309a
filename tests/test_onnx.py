"""ONNX export and the ONNX Runtime backend: same probabilities as torch, a self-contained file, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import soundfile as sf
import torch

from conftest import voiced
from voxemo.apps.cli import main
from voxemo.core.errors import ModelError
from voxemo.core.labels import EMOTIONS, EXTRA_EMOTIONS
from voxemo.dsp.features import segment_frames
from voxemo.inference.loading import load_model
from voxemo.inference.onnx_backend import OnnxClassifier
from voxemo.inference.torch_backend import EmotionClassifier, export_onnx
from voxemo.io.modelfile import META_CONFIG, META_LABELS

TOLERANCE = 1e-4  # max absolute difference of probabilities between torch and ONNX Runtime


@pytest.fixture(scope="module")
def tiny_onnx(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(load_model(tiny_model_dir), tmp_path_factory.mktemp("onnx") / "tiny.onnx")


@pytest.fixture(scope="module")
def shipped_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(load_model("fast", backend="torch"), tmp_path_factory.mktemp("onnx") / "fast.onnx")


def signals(seed: int = 7) -> list[np.ndarray]:
    """Voice-like clips from shorter than one segment to several overlapping windows, at two sample rates."""
    rng = np.random.default_rng(seed)
    return [voiced(s, 16000, rng, f0=f0) for s, f0 in ((0.4, 120), (1.0, 180), (2.5, 240), (7.0, 150), (11.0, 300))]


@pytest.mark.parametrize("which", ["tiny", "shipped"])
def test_onnx_matches_torch_on_synthetic_audio(which: str, request: pytest.FixtureRequest) -> None:
    torch_clf = load_model(request.getfixturevalue("tiny_model_dir") if which == "tiny" else "fast", backend="torch")
    onnx_clf = load_model(request.getfixturevalue(f"{which}_onnx"), backend="onnx")
    assert isinstance(onnx_clf, OnnxClassifier)
    assert onnx_clf.config == torch_clf.config
    assert onnx_clf.classes_.tolist() == torch_clf.classes_.tolist()

    clips = signals()
    pt, po = torch_clf.predict_proba(clips, sr=16000), onnx_clf.predict_proba(clips, sr=16000)
    assert pt.shape == po.shape == (len(clips), len(torch_clf.classes_))
    assert np.abs(pt - po).max() < TOLERANCE
    np.testing.assert_allclose(po.sum(axis=1), 1.0, atol=1e-5)
    assert list(onnx_clf.predict(clips, sr=16000)) == list(torch_clf.predict(clips, sr=16000))
    # the long clips are several windows: the averaging path, not just one segment, is compared
    n_frames = segment_frames(torch_clf.config.audio, torch_clf.config.features)
    assert torch_clf.features(clips[-1], 16000).shape[1] > 2 * n_frames


def test_segments_with_any_batch_size(tiny_model_dir: Path, tiny_onnx: Path, rng: np.random.Generator) -> None:
    torch_clf, onnx_clf = load_model(tiny_model_dir), load_model(tiny_onnx, backend="onnx")
    cfg = torch_clf.config
    shape = (cfg.features.n_mels, segment_frames(cfg.audio, cfg.features))
    for n in (1, 3, 300):  # 300 > the 256-segment chunk: two runs of the session
        x = (rng.normal(-40, 15, (n, *shape))).astype(np.float32)
        po = onnx_clf.segment_proba(x)
        assert po.shape == (n, len(EMOTIONS))
        assert np.abs(po - torch_clf.segment_proba(x)).max() < TOLERANCE
    assert onnx_clf.segment_proba(np.zeros((0, *shape), np.float32)).shape == (0, len(EMOTIONS))


def test_file_carries_config_and_labels(tiny_model_dir: Path, tiny_onnx: Path) -> None:
    meta = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"]).get_modelmeta()
    props = meta.custom_metadata_map
    assert json.loads(props[META_LABELS]) == list(EMOTIONS)
    assert json.loads(props[META_CONFIG]) == json.loads((tiny_model_dir / "config.json").read_text())
    clf = load_model(tiny_onnx, backend="onnx")
    assert clf.threads == 1  # one thread by default, like the torch classifier
    assert clf.session.get_session_options().intra_op_num_threads == 1


def test_onnx_inference_runs_without_torch(tiny_onnx: Path) -> None:
    """Loading and running an exported model never imports torch (a light deployment, fast worker start-up)."""
    code = ("import sys, numpy as np; from voxemo import load_model; "
            "clf = load_model(sys.argv[1], backend='onnx'); "
            "y = np.sin(2 * np.pi * 200 * np.arange(16000) / 16000).astype(np.float32) * 0.3; "
            "print(clf.predict(y, sr=16000, speech_check=False), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tiny_onnx)], capture_output=True, text=True, check=True)
    label, torch_loaded = out.stdout.split()
    assert label in EMOTIONS and torch_loaded == "False"


@pytest.mark.data
def test_onnx_matches_torch_on_real_clips(shipped_onnx: Path, real_ravdess: Path) -> None:
    """16 RAVDESS clips, two per emotion from different actors, through the whole file path of both backends."""
    clips = []
    for e in range(1, 9):
        matches = sorted(real_ravdess.glob(f"Actor_*/03-01-{e:02d}-02-*-*-*.*")) or sorted(
            real_ravdess.glob(f"Actor_*/03-01-{e:02d}-01-*-*-*.*"))
        clips += [matches[0], matches[len(matches) // 2]]
    assert len(clips) == 16 and len({c.parent for c in clips}) > 1
    torch_clf, onnx_clf = load_model("fast", backend="torch"), load_model(shipped_onnx, backend="onnx")
    pt, po = torch_clf.predict_proba(clips), onnx_clf.predict_proba(clips)
    assert pt.shape == (16, 8)
    assert np.abs(pt - po).max() < TOLERANCE
    assert [onnx_clf.predict_file(c)["emotion"] for c in clips] == list(torch_clf.predict(clips))


def test_cli_export_then_predict_with_onnx(tiny_model_dir: Path, tmp_path: Path, rng: np.random.Generator,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sub" / "model.onnx"
    assert main(["export", "--onnx", str(out), "--model", str(tiny_model_dir)]) == 0
    stdout, err = capsys.readouterr()
    assert stdout.strip() == str(out) and err == ""
    assert out.is_file() and not list(out.parent.glob(".*tmp"))

    clips = [tmp_path / "a.wav", tmp_path / "b.flac"]
    for i, clip in enumerate(clips):
        sf.write(str(clip), voiced(1.0 + 3 * i, 16000, rng), 16000)
    results = {}
    for backend, model in (("torch", tiny_model_dir), ("onnx", out)):
        assert main(["predict", "--json", "--backend", backend, "--model", str(model), *map(str, clips)]) == 0
        stdout, err = capsys.readouterr()
        assert err == ""
        results[backend] = [json.loads(line) for line in stdout.splitlines()]
    for a, b in zip(results["torch"], results["onnx"], strict=True):
        assert a["path"] == b["path"] and a["emotion"] == b["emotion"]
        for c in EMOTIONS:  # rounded to 4 decimals: at most one unit apart
            assert abs(a["probabilities"][c] - b["probabilities"][c]) <= 1.5e-4


def _one_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("voxemo: error: ") and "Traceback" not in out + err, err
    return lines[0]


def test_corrupt_and_foreign_onnx_files_are_one_line_errors(tiny_onnx: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    wav = tmp_path / "x.wav"
    sf.write(str(wav), voiced(1.0, 16000, np.random.default_rng(0)), 16000)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00\x01not a protobuf" * 50)
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(tiny_onnx.read_bytes()[: tiny_onnx.stat().st_size // 2])
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    for bad in (garbage, cut, empty):
        line = _one_error(capsys, ["predict", "--backend", "onnx", "--model", str(bad), str(wav)])
        assert f"{bad}: not a readable ONNX model" in line
        with pytest.raises(ModelError, match="not a readable ONNX model"):
            OnnxClassifier.load(bad)

    # a valid ONNX graph that voxemo did not write: no config or labels inside
    foreign = tmp_path / "foreign.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch's own use of a deprecated pytree API
        torch.onnx.export(torch.nn.Linear(4, 2).eval(), (torch.zeros(1, 4),), str(foreign), dynamo=True, verbose=False)
    with pytest.raises(ModelError, match="not a voxemo ONNX export"):
        load_model(foreign, backend="onnx")


def test_backend_and_model_kind_must_agree(tiny_model_dir: Path, tiny_onnx: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    wav = tmp_path / "x.wav"
    sf.write(str(wav), voiced(1.0, 16000, np.random.default_rng(0)), 16000)
    line = _one_error(capsys, ["predict", "--backend", "torch", "--model", str(tiny_onnx), str(wav)])
    assert "is an ONNX file" in line and "--backend onnx" in line
    line = _one_error(capsys, ["predict", "--backend", "onnx", "--model", str(tiny_model_dir), str(wav)])
    assert "holds no model.onnx" in line and "voxemo export --onnx" in line
    line = _one_error(capsys, ["predict", "--backend", "onnx", "--model", str(tmp_path / "missing.onnx"), str(wav)])
    assert "not found" in line
    with pytest.raises(ModelError, match="backend='tensorflow' is not one of auto, torch, onnx"):
        load_model(tiny_model_dir, backend="tensorflow")
    # auto (the default) takes a .onnx file as it is, and a folder without model.onnx with torch
    assert main(["predict", "--model", str(tiny_onnx), str(wav)]) == 0
    assert isinstance(load_model(tiny_onnx), OnnxClassifier)
    assert isinstance(load_model(tiny_model_dir), EmotionClassifier)


def test_export_errors(tiny_model_dir: Path, tiny_onnx: Path, tmp_path: Path,
                       capsys: pytest.CaptureFixture[str]) -> None:
    line = _one_error(capsys, ["export", "--onnx", str(tmp_path), "--model", str(tiny_model_dir)])
    assert "is a folder" in line
    line = _one_error(capsys, ["export", "--onnx", str(tmp_path / "x.onnx"), "--model", str(tmp_path / "nope")])
    assert "model directory not found" in line
    with pytest.raises(ModelError, match="needs a torch model"):
        export_onnx(load_model(tiny_onnx, backend="onnx"), tmp_path / "again.onnx")
    assert isinstance(load_model(tiny_model_dir), EmotionClassifier)


def test_shipped_models_run_with_onnx_runtime_by_default() -> None:
    """A shipped CNN folder stores its network once, as model.onnx, which load_model("fast") runs; torch on the same
    folder rebuilds the network from the state the file carries, bit for bit, and gives the same probabilities. The
    default model (an encoder and a NumPy head) predicts without importing torch."""
    from voxemo.inference.loading import default_model_dir
    from voxemo.io.modelfile import ONNX_FILE, WEIGHTS
    from voxemo.nn.export import state_from_onnx

    for name in ("fast", "telephone"):
        assert (default_model_dir(name) / ONNX_FILE).is_file() and not (default_model_dir(name) / WEIGHTS).exists()
    clf, torch_clf = load_model("fast"), load_model("fast", backend="torch")
    assert isinstance(clf, OnnxClassifier) and clf.backend == "onnx" and torch_clf.backend == "torch"
    state = state_from_onnx(default_model_dir("fast") / ONNX_FILE)
    assert state.keys() == torch_clf.model.state_dict().keys()
    assert clf.temperature == torch_clf.temperature != 1.0 and clf.calibration == torch_clf.calibration
    assert clf.config == torch_clf.config and clf.classes_.tolist() == torch_clf.classes_.tolist()
    clips = signals(3)
    assert np.abs(clf.predict_proba(clips, sr=16000) - torch_clf.predict_proba(clips, sr=16000)).max() < TOLERANCE
    code = ("import sys, numpy as np; from voxemo import load_model; clf = load_model(); "
            "y = np.sin(2 * np.pi * 200 * np.arange(16000) / 16000).astype(np.float32) * 0.3; "
            "print(clf.backend, clf.predict(y, sr=16000, speech_check=False), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    backend, label, torch_loaded = out.stdout.split()
    assert backend == "onnx" and label in EMOTIONS + EXTRA_EMOTIONS and torch_loaded == "False"


def test_a_folder_with_only_its_onnx_file_runs_adapts_and_exports_with_torch(tiny_model_dir: Path,
                                                                            tmp_path: Path) -> None:
    """The exported file carries the whole torch state (what the graph folds away too), so a folder without
    weights.pt loads with torch bit for bit; an older export without it is refused in one line."""
    import shutil

    import onnx

    from voxemo.nn.export import state_from_onnx

    folder = Path(shutil.copytree(tiny_model_dir, tmp_path / "m"))
    clf = load_model(folder, backend="torch")
    assert isinstance(clf, EmotionClassifier)
    clf.save(folder, onnx=True)
    expected = {k: v.clone() for k, v in clf.model.state_dict().items()}
    (folder / "weights.pt").unlink()
    assert isinstance(load_model(folder), OnnxClassifier)
    again = load_model(folder, backend="torch")
    assert isinstance(again, EmotionClassifier)
    got = again.model.state_dict()
    assert got.keys() == expected.keys() and all(torch.equal(got[k], expected[k]) for k in expected)
    old = onnx.load(str(folder / "model.onnx"))
    kept = [p for p in old.metadata_props if p.key != "voxemo.state"]
    del old.metadata_props[:]
    old.metadata_props.extend(kept)
    onnx.save(old, str(tmp_path / "old.onnx"))
    with pytest.raises(ModelError, match="holds no torch state"):
        state_from_onnx(tmp_path / "old.onnx")


def test_auto_backend_uses_a_folders_onnx_only_while_it_matches_the_weights(
        tiny_model_dir: Path, tmp_path: Path, rng: np.random.Generator, caplog: pytest.LogCaptureFixture) -> None:
    import shutil

    folder = Path(shutil.copytree(tiny_model_dir, tmp_path / "m"))
    clf = load_model(folder)
    assert isinstance(clf, EmotionClassifier) and not (folder / "model.onnx").exists()
    y = voiced(2.0, 16000, rng)
    base = clf.predict_proba(y, sr=16000)

    clf.temperature = 2.0
    clf.save(folder, onnx=True)
    auto = load_model(folder)
    assert isinstance(auto, OnnxClassifier) and auto.temperature == 2.0
    assert isinstance(load_model(folder, backend="onnx"), OnnxClassifier)
    assert isinstance(load_model(folder, backend="torch"), EmotionClassifier)
    np.testing.assert_allclose(auto.predict_proba(y, sr=16000), load_model(folder, backend="torch").predict_proba(
        y, sr=16000), atol=TOLERANCE)
    assert not np.allclose(auto.predict_proba(y, sr=16000), base, atol=1e-3)  # the temperature is applied

    # calibration.json rules: a temperature changed after the export reaches the onnx backend too
    (folder / "calibration.json").write_text(json.dumps({"temperature": 1.0}))
    assert load_model(folder).temperature == 1.0

    # weights replaced behind its back: the stale model.onnx is ignored, with a warning
    state = torch.load(folder / "weights.pt", weights_only=True)
    state["classifier.bias"] += 1.0
    torch.save(state, folder / "weights.pt")
    with caplog.at_level("WARNING", logger="voxemo.inference.loading"):
        assert isinstance(load_model(folder), EmotionClassifier)
    assert "was not exported from its weights.pt" in caplog.text

    # a corrupt model.onnx: torch runs, with a warning naming the file
    clf.save(folder, onnx=True)
    (folder / "model.onnx").write_bytes(b"junk")
    caplog.clear()
    with caplog.at_level("WARNING", logger="voxemo.inference.loading"):
        assert isinstance(load_model(folder), EmotionClassifier)
    assert "not a readable ONNX model" in caplog.text

    # saving without onnx removes the old file, so it cannot outlive its weights
    clf.save(folder)
    assert not (folder / "model.onnx").exists() and isinstance(load_model(folder), EmotionClassifier)
