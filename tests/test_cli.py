"""The ``voxemo`` command end to end on tiny fake RAVDESS corpora: train, evaluate, predict, help and errors.

Kept quick: six actors (the training command holds out four for validation), half-second clips, 1-2 epochs,
one torch thread and one extraction process; the feature cache goes to a temporary folder.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import voxemo
from conftest import needs_train, voiced
from voxemo.apps.cli import build_parser, main
from voxemo.core.labels import EMOTIONS

ACTORS = (1, 2, 3, 4, 5, 6)
FAST = ["--threads", "1", "--jobs", "1"]
SUBCOMMANDS = ("run", "download", "analyze", "train", "evaluate", "predict")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the feature cache and any default corpus location out of the user's home."""
    monkeypatch.setenv("VOXEMO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("VOXEMO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("VOXEMO_DATA", raising=False)


@pytest.fixture
def corpus(fake_ravdess: Callable[..., Path]) -> Path:
    return fake_ravdess(ACTORS, seconds=0.5)


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("voxemo: error: "), err
    assert "Traceback" not in err
    return lines[0]


@needs_train
def test_train_then_predict(corpus: Path, tmp_path: Path, rng: np.random.Generator,
                            capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "model"
    assert main(["-q", "--seed", "1", "train", str(corpus), "--out", str(model), "--epochs", "2", *FAST]) == 0
    out, err = capsys.readouterr()
    assert f"saved {model}" in out and "Traceback" not in err
    assert {p.name for p in model.iterdir()} >= {"weights.pt", "config.json", "labels.json", "training.json",
                                                 "model.onnx"}
    assert voxemo.load_model(model).backend == "onnx"  # the folder's model.onnx matches its weights
    assert json.loads((model / "labels.json").read_text()) == list(EMOTIONS)
    config = json.loads((model / "config.json").read_text())
    assert config["train"]["epochs"] == 2 and config["train"]["seed"] == 1
    assert "threads" not in config["train"]  # --threads is a run setting, not part of the saved recipe
    report = json.loads((model / "training.json").read_text())
    assert report["n_clips"] == len(ACTORS) * 30 and report["skipped"] == []
    assert report["variants"]["chosen"] in ("bias_init", "no_bias_init")
    assert 1 <= report["final_epochs"] <= 2
    assert len(report["variants"]["val_speakers"]) == 4  # TrainConfig.val_speakers

    clip = tmp_path / "clip.wav"
    sf.write(str(clip), voiced(1.2, 16000, rng, f0=175.0), 16000)
    assert main(["predict", "--json", "--model", str(model), str(clip)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 1 and err == ""
    res = json.loads(lines[0])
    assert res["path"] == str(clip) and res["emotion"] in EMOTIONS
    assert list(res["probabilities"]) == list(EMOTIONS)
    assert sum(res["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert res["confidence"] == max(res["probabilities"].values())


@needs_train
def test_evaluate_random_protocol(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "eval"
    assert main(["-q", "evaluate", str(corpus), "--protocol", "random", "--out", str(out_dir), "--epochs", "1",
                 *FAST]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("random: accuracy") and str(out_dir / "report.md") in out
    assert "Traceback" not in err
    for name in ("metrics.json", "report.md", "confusion.png"):
        assert (out_dir / name).stat().st_size > 0, name
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["protocol"] == "random" and len(metrics["folds"]) == 1
    assert metrics["folds"][0]["epochs_run"] == 1
    assert 0.0 <= metrics["summary"]["accuracy"]["mean"] <= 1.0
    n_test = metrics["folds"][0]["n_test"]
    assert np.asarray(metrics["confusion"]).shape == (8, 8) and np.sum(metrics["confusion"]) == n_test
    assert (out_dir / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "random" in (out_dir / "report.md").read_text()
    assert any(Path(tmp_path / "cache").rglob("*.npy"))  # $VOXEMO_CACHE was used, not ~/.cache


def test_predict_human_output(tiny_model_dir: Path, tmp_path: Path, rng: np.random.Generator,
                              capsys: pytest.CaptureFixture[str]) -> None:
    clips = [tmp_path / "a.wav", tmp_path / "b.flac"]
    for clip in clips:
        sf.write(str(clip), voiced(1.0, 16000, rng), 16000)
    assert main(["predict", "--model", str(tiny_model_dir), *map(str, clips)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    rows = [line.split("\t") for line in out.splitlines()]
    assert [r[0] for r in rows] == [str(c) for c in clips]
    for _, emotion, confidence in rows:
        assert emotion in EMOTIONS and 0.0 < float(confidence) <= 1.0 and len(confidence) == 4  # "0.xx"

    # a folder is walked; a failure goes to stderr as one line and makes the exit code 1
    (tmp_path / "c.wav").write_text("not audio")
    assert main(["predict", "--model", str(tiny_model_dir), str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert [line.split("\t")[0] for line in out.splitlines()] == [str(c) for c in clips]
    assert err.splitlines() == [
        f"voxemo: error: {tmp_path / 'c.wav'}: not a readable audio file (Format not recognised.)"]


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_subcommand_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: voxemo {command}")
    assert "--help" in out


def test_root_help_lists_subcommands_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert all(c in out for c in SUBCOMMANDS) and "--seed" in out
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("voxemo ")
    assert build_parser().prog == "voxemo"


@pytest.mark.parametrize("command", ["train", "evaluate", "analyze"])
@needs_train
def test_unknown_corpus_path_is_a_one_line_error(command: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no_such_corpus"
    assert main(["-q", command, str(missing), "--out", str(tmp_path / "out")]) == 2
    out, err = capsys.readouterr()
    line = one_error_line(err)
    assert str(missing) in line and "no such file or folder" in line
    assert out == ""
    assert not (tmp_path / "out").exists()


@needs_train
def test_folder_without_ravdess_clips_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "not_ravdess"
    folder.mkdir()
    sf.write(str(folder / "hello.wav"), np.zeros(1600, np.float32), 16000)
    assert main(["-q", "train", str(folder), "--out", str(tmp_path / "model")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(folder) in line and "RAVDESS" in line


def test_missing_model_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip = tmp_path / "clip.wav"
    sf.write(str(clip), np.zeros(1600, np.float32), 16000)
    assert main(["predict", "--model", str(tmp_path / "no_model"), str(clip)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "no_model" in line and "model directory not found" in line


@pytest.mark.parametrize("argv", [[], ["predict"], ["evaluate", "--protocol", "leaky", "--out", "x"], ["frobnicate"]])
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: voxemo") and "Traceback" not in err


@needs_train
def test_run_the_whole_study(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "study"
    argv = ["-q", "run", "--data", str(corpus), "--out", str(out), "--epochs", "2", "--with-random", *FAST]
    assert main(argv) == 0
    stdout, err = capsys.readouterr()
    assert "actor-6fold accuracy" in stdout and "Traceback" not in err
    for name in ("report.md", "summary.json", "variants.json", "manifest.jsonl", "analysis/report.md",
                 "eval-actor-6fold/metrics.json", "eval-actor-6fold/confusion.png", "eval-random/metrics.json",
                 "model/weights.pt", "model/training.json", "model/model.onnx"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    folds = json.loads((out / "eval-actor-6fold/metrics.json").read_text())["folds"]
    assert len(folds) == 6 and all(len(f["test_speakers"]) == 1 for f in folds)
    assert summary["recommended"]["top_db"] == summary["config"]["audio"]["top_db"]
    assert set(summary["timings_s"]) >= {"analysis", "features", "variants", "eval-actor-6fold", "final", "total"}
    assert "Chosen:" in (out / "report.md").read_text()


def test_predict_into_a_closed_pipe_ends_quietly(tiny_model_dir, make_wav, rng):
    """`voxemo predict DIR | head` must not end in a BrokenPipeError traceback."""
    for i in range(5):
        folder = make_wav(f"clips/c{i}.wav", voiced(0.8, 16000, rng), 16000).parent
    proc = subprocess.Popen([sys.executable, "-m", "voxemo", "predict", "--model", str(tiny_model_dir), "--json",
                             str(folder)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first line is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err


@needs_train
def test_train_takes_the_cross_fitted_temperature_of_an_evaluation(corpus: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """``train --calibration-from`` gives the model the temperature an evaluation of the same recipe fitted on
    out-of-fold predictions; an evaluation of another recipe is refused before any training."""
    evaluation = tmp_path / "eval"
    assert main(["-q", "evaluate", str(corpus), "--out", str(evaluation), "--epochs", "1", *FAST]) == 0
    fitted = json.loads((evaluation / "metrics.json").read_text())["calibration"]["temperature"]
    model = tmp_path / "model"
    assert main(["-q", "--seed", "3", "train", str(corpus), "--out", str(model), "--epochs", "2",
                 "--calibration-from", str(evaluation), *FAST]) == 0
    cal = json.loads((model / "calibration.json").read_text())
    assert cal["temperature"] == pytest.approx(fitted) and str(evaluation) in cal["fitted_on"]
    assert cal["n"] == len(ACTORS) * 30
    report = json.loads((model / "training.json").read_text())
    assert report["variants"]["calibration_validation"]["temperature"] > 0  # the validation fit is kept for comparison
    assert voxemo.load_model(model).temperature == pytest.approx(fitted)
    capsys.readouterr()

    assert main(["-q", "train", str(corpus), "--out", str(tmp_path / "other"), "--calibration-from", str(evaluation),
                 "--set", "train.label_smoothing=0.2", *FAST]) == 2
    assert "train.label_smoothing" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "other").exists()
    assert main(["-q", "train", str(corpus), "--out", str(tmp_path / "other"), "--calibration-from",
                 str(tmp_path), *FAST]) == 2
    assert "no evaluation there" in one_error_line(capsys.readouterr().err)
