"""Integration tests on the real RAVDESS copy (marked ``data``; skipped when it is absent)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from voxemo.apps.cli import main
from voxemo.core.config import Config, TrainConfig
from voxemo.core.labels import EMOTIONS, EXTRA_EMOTIONS
from voxemo.corpus import load_ravdess
from voxemo.inference.loading import default_model_dir, load_model
from voxemo.io.cache import extract_many
from voxemo.nn.train import predict_specs, train_model

pytestmark = pytest.mark.data


def test_short_real_training_run_beats_chance_on_unseen_actors(real_ravdess):
    """Train on 8 actors for a few epochs, test on 4 others: well above the 1/8 chance level."""
    records = load_ravdess(real_ravdess)
    cfg = Config(train=TrainConfig(epochs=10))
    train = [r for r in records if 1 <= int(r.speaker) <= 8]
    test = [r for r in records if 21 <= int(r.speaker) <= 24]
    specs = extract_many([r.path for r in train + test], cfg.audio, cfg.features, progress=False)
    assert all(isinstance(s, np.ndarray) for s in specs)
    y = np.array([EMOTIONS.index(r.emotion) for r in train + test])
    res = train_model(specs[: len(train)], y[: len(train)], len(EMOTIONS), cfg, progress=False)
    probs = predict_specs(res.model, specs[len(train) :], cfg)
    accuracy = float(np.mean(probs.argmax(1) == y[len(train) :]))
    assert accuracy > 0.25, accuracy


def test_shipped_model_predicts_real_clips(real_ravdess, capsys):
    assert (default_model_dir() / "head.npz").is_file() and (default_model_dir("fast") / "model.onnx").is_file()
    clf = load_model()
    paths = sorted(real_ravdess.glob("Actor_2[34]/*"))[::10]
    labels = clf.predict(paths)
    assert set(labels) <= set(EMOTIONS + EXTRA_EMOTIONS) and len(labels) == len(paths)
    truth = [EMOTIONS[int(p.name.split("-")[2]) - 1] for p in paths]
    assert np.mean(labels == np.array(truth)) > 0.5  # actors in its training data: far above chance (1/9)
    assert main(["predict", "--json", *map(str, paths[:3])]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["path"] for line in lines] == list(map(str, paths[:3]))
    assert all(abs(sum(line["probabilities"].values()) - 1) < 1e-3 for line in lines)


def test_stereo_clip_is_downmixed(real_ravdess):
    clf = load_model()
    stereo = next(real_ravdess.glob("Actor_01/03-01-02-01-01-02-01.*"))
    assert clf.predict_proba(stereo).shape == (len(clf.classes_),)
