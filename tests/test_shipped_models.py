"""Every shipped model is what one ``voxemo train`` command writes (the command in its card): rebuilt here on a few
RAVDESS actors, each has the shipped model's recipe (config), classes and network shape (for an encoder family the
same encoder reference and head shape), loads by its folder, and predicts real speech."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from voxemo.apps.cli import main
from voxemo.core.config import Config
from voxemo.inference.loading import PROFILES, default_model_dir, load_model
from voxemo.inference.probe_backend import ProbeClassifier

#: each shipped model and the arguments of the `voxemo train` that builds it (besides its data and --out); the cards
#: give the full commands (the corpora, and what the CNNs' small rebuilds here shorten: members' epochs)
BUILDS = {
    "default": ["--model", "whisper", "--leave-out", "boredom"],
    "whisper-telephone": ["--model", "whisper", "--channel", "telephone", "--leave-out", "boredom"],
    "voice": ["--model", "voice"],
    "voice-telephone": ["--model", "voice", "--channel", "telephone"],
    "fast": ["--set", "model.members=3", "--epochs", "1", "--onnx-only"],
    "telephone": ["--like", "fast", "--channel", "telephone", "--epochs", "1", "--onnx-only"],
}
#: what a rebuild may differ in: how long it trained, and which output-bias variant won on its few actors
EXEMPT = {("train", "epochs"), ("model", "bias_init")}


def recipe(config: Config) -> dict[str, object]:
    d = config.to_dict()
    return {f"{section}.{k}": v for section in d for k, v in d[section].items() if (section, k) not in EXEMPT}


def actors(root: Path, tmp: Path, which: range) -> Path:
    """A RAVDESS folder of the actors ``which`` (links to the real files)."""
    out = tmp / "ravdess"
    for a in which:
        (out / f"Actor_{a:02d}").mkdir(parents=True)
        for f in (root / f"Actor_{a:02d}").iterdir():
            (out / f"Actor_{a:02d}" / f.name).symlink_to(f)
    return out


def test_every_shipped_model_has_a_build() -> None:
    assert set(BUILDS) == set(PROFILES)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(BUILDS))
def test_voxemo_train_rebuilds_the_shipped_model(name: str, real_ravdess: Path, tmp_path: Path) -> None:
    encoder_family = "--model" in BUILDS[name]
    data = actors(real_ravdess, tmp_path, range(1, 7) if encoder_family else range(1, 3))
    out = tmp_path / name
    assert main(["-q", "train", *BUILDS[name], "--jobs", "1", "--out", str(out), str(data)]) == 0
    rebuilt, shipped = load_model(out), load_model(name)
    assert recipe(rebuilt.config) == recipe(shipped.config)
    assert list(rebuilt.classes_) == list(shipped.classes_)
    assert sorted(p.name for p in out.iterdir() if p.suffix in (".onnx", ".pt", ".npz")) == sorted(
        p.name for p in default_model_dir(name).iterdir() if p.suffix in (".onnx", ".pt", ".npz"))
    if isinstance(shipped, ProbeClassifier):
        assert isinstance(rebuilt, ProbeClassifier)
        assert rebuilt.encoder == shipped.encoder and rebuilt.head.weight.shape == shipped.head.weight.shape
        assert json.loads((out / "calibration.json").read_text())["temperature"] > 0
    else:
        torch_rebuilt, torch_shipped = load_model(out, backend="torch"), load_model(name, backend="torch")
        theirs = {k: tuple(v.shape) for k, v in torch_shipped.model.state_dict().items()}  # type: ignore[attr-defined]
        assert {k: tuple(v.shape) for k, v in torch_rebuilt.model.state_dict().items()} == theirs  # type: ignore[attr-defined]
    clips = sorted((real_ravdess / "Actor_09").iterdir())[::4]  # an actor neither heard
    truth = np.array([int(f.name.split("-")[2]) - 1 for f in clips])  # RAVDESS codes in the classes' order
    probs = rebuilt.predict_proba([str(f) for f in clips])
    assert probs.shape == (len(clips), 8) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    if encoder_family:  # a CNN trained one epoch on two actors is not expected to be right yet
        assert float((probs.argmax(1) == truth).mean()) > 0.25  # chance is 1/8
