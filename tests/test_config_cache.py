"""Config validation and round trips; the feature cache's keys and crash safety."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import voiced
from voxemo.core.config import AudioConfig, Config, FeatureConfig, ModelConfig, TrainConfig
from voxemo.core.errors import ConfigError
from voxemo.dsp.features import config_digest
from voxemo.io.cache import FeatureCache, extract_many


def test_config_round_trip():
    cfg = Config(model=ModelConfig(channels=(8, 16), bias_init=False), train=TrainConfig(epochs=3))
    assert Config.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("make", [
    lambda: AudioConfig(sample_rate=100),
    lambda: AudioConfig(duration=-1),
    lambda: FeatureConfig(hop_length=2048, n_fft=1024),
    lambda: FeatureConfig(n_mels=0),
    lambda: ModelConfig(channels=()),
    lambda: TrainConfig(epochs=0),
    lambda: Config.from_dict({"audio": {"sample_rte": 1}}),
])
def test_invalid_config_raises(make):
    with pytest.raises(ConfigError):
        make()


def test_config_digest_changes_with_features_not_duration():
    a, f = AudioConfig(), FeatureConfig()
    assert config_digest(a, f) != config_digest(a, f.replace(n_mels=40))
    assert config_digest(a, f) != config_digest(a.replace(top_db=20), f)
    assert config_digest(a, f) == config_digest(a.replace(duration=2.0), f)


def test_cache_hit_miss_and_corrupt_entry(tmp_path, make_wav, rng):
    path = make_wav("a.wav", voiced(1.0, 16000, rng), 16000)
    audio, feats = AudioConfig(), FeatureConfig()
    first = extract_many([path], audio, feats, cache_dir=tmp_path / "c", progress=False)[0]
    entries = list((tmp_path / "c").rglob("*.npy"))
    assert len(entries) == 1 and not list((tmp_path / "c").rglob("*.tmp*"))
    again = extract_many([path], audio, feats, cache_dir=tmp_path / "c", progress=False)[0]
    assert np.array_equal(first, again)  # a miss returns exactly what a later hit does
    entries[0].write_bytes(b"garbage from a killed run")
    healed = extract_many([path], audio, feats, cache_dir=tmp_path / "c", progress=False)[0]
    assert np.allclose(first, healed, atol=0.05)
    # another config never reads the old entry
    other = extract_many([path], audio, feats.replace(n_mels=32), cache_dir=tmp_path / "c", progress=False)[0]
    assert other.shape[0] == 32 and len(list((tmp_path / "c").rglob("*.npy"))) == 2


def test_cache_key_follows_content(tmp_path, make_wav, rng):
    path = make_wav("a.wav", voiced(1.0, 16000, rng), 16000)
    cache = FeatureCache(tmp_path, AudioConfig(), FeatureConfig())
    a = extract_many([path], AudioConfig(), FeatureConfig(), cache_dir=tmp_path, progress=False)[0]
    make_wav("a.wav", voiced(1.0, 16000, rng, f0=300), 16000)  # same name, new content
    b = extract_many([path], AudioConfig(), FeatureConfig(), cache_dir=tmp_path, progress=False)[0]
    assert not np.allclose(a[:, : min(a.shape[1], b.shape[1])], b[:, : min(a.shape[1], b.shape[1])], atol=1)
    assert len(list(cache.root.rglob("*.npy"))) == 2


def test_extract_many_reports_errors_and_goes_on(tmp_path, make_wav, rng):
    good = make_wav("good.wav", voiced(1.0, 16000, rng), 16000)
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    paths = [good, bad, tmp_path / "missing.wav"] * 6  # enough to use the process pool
    out = extract_many(paths, AudioConfig(), FeatureConfig(), cache_dir="", jobs=2, progress=False)
    assert isinstance(out[0], np.ndarray)
    assert isinstance(out[1], str) and "bad.wav" in out[1]
    assert isinstance(out[2], str) and "missing.wav" in out[2]


def test_configs_saved_before_the_rename_still_load() -> None:
    """``val_actors`` became ``val_speakers``; ``threads`` is a run setting, no longer part of a saved recipe."""
    from voxemo.core.config import Config, TrainConfig

    old = {"epochs": 5, "val_actors": 3, "threads": 2}
    assert TrainConfig.from_dict(old) == TrainConfig(epochs=5, val_speakers=3)
    assert "threads" not in Config().to_dict()["train"] and "val_actors" not in Config().to_dict()["train"]
    with pytest.raises(ConfigError, match="unknown field"):
        TrainConfig.from_dict({"thread": 2})
