"""Shared fixtures: seeded rng, synthetic signals, WAV writers and a fake-RAVDESS factory."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import soundfile as sf

from voxemo.core.labels import EMOTIONS

SHARED_RAVDESS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ravdess"


#: a test of a command that needs the train extra (torch, scikit-learn, librosa): skipped on a base install, where
#: the command answers with the extra's install line instead
needs_train = pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in ("torch", "sklearn", "librosa")),
                                 reason="needs the train extra (pip install -e '.[train]')")


def ravdess_root() -> Path | None:
    """The real RAVDESS copy: $VOXEMO_DATA if set, else ../shared/data/ravdess; None when absent."""
    env = os.environ.get("VOXEMO_DATA")
    root = Path(env) if env else SHARED_RAVDESS
    return root if root.is_dir() else None


def corpus_root(name: str) -> Path | None:
    """The real copy of the development corpus ``name`` ("emodb", "turevdb"): ``$VOXEMO_EMODB`` /
    ``$VOXEMO_TUREVDB`` if set, else ../shared/data/<name>; None when absent."""
    env = os.environ.get(f"VOXEMO_{name.upper()}")
    root = Path(env) if env else SHARED_RAVDESS.parent / name
    return root if root.is_dir() else None


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> None:
    """Trainings in the test process use one torch thread (a run setting, see ``train_model(threads=...)``): small
    models train faster that way on two shared cores, and every test sees the same thread count."""
    try:
        import torch
    except ModuleNotFoundError:  # a base install (no train extra): the tests that need torch skip themselves
        return
    torch.set_num_threads(1)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def real_ravdess() -> Path:
    root = ravdess_root()
    if root is None:
        pytest.skip("real RAVDESS not found (set VOXEMO_DATA or provide ../shared/data/ravdess)")
    return root


def tone(freq: float = 220.0, seconds: float = 1.0, sr: int = 22050, *, amp: float = 0.3,
         silence: float = 0.0) -> np.ndarray:
    """A sine of ``seconds`` surrounded by ``silence`` seconds of zeros on both sides, float32."""
    t = np.arange(int(seconds * sr)) / sr
    y = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    pad = np.zeros(int(silence * sr), dtype=np.float32)
    return np.concatenate([pad, y, pad])


def voiced(seconds: float, sr: int, rng: np.random.Generator, *, f0: float = 150.0) -> np.ndarray:
    """A crude voice-like signal: harmonic series with vibrato plus a little noise, float32."""
    t = np.arange(int(seconds * sr)) / sr
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.05 * np.sin(2 * np.pi * 5 * t))) / sr
    y = sum(np.sin(k * phase) / k for k in range(1, 8))
    y = y * (0.5 + 0.5 * np.sin(2 * np.pi * 2 * t) ** 2)
    y = y + 0.01 * rng.standard_normal(len(t))
    return (0.3 * y / np.max(np.abs(y))).astype(np.float32)


@pytest.fixture
def make_wav(tmp_path: Path) -> Callable[..., Path]:
    """Write an array to ``tmp_path/name`` with soundfile; returns the path."""

    def _make(name: str, y: np.ndarray, sr: int = 22050, subtype: str | None = None) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), y, sr, subtype=subtype)
        return path

    return _make


@pytest.fixture
def fake_ravdess(tmp_path: Path, rng: np.random.Generator) -> Callable[..., Path]:
    """Build a tiny RAVDESS-named corpus: ``Actor_XX/03-01-EE-II-SS-RR-XX.wav`` (or flat, or .flac).

    Each emotion gets a different pitch so that a model can learn something from it.
    """

    def _make(actors: tuple[int, ...] = (1, 2), *, flat: bool = False, ext: str = ".wav", sr: int = 16000,
              seconds: float = 1.0, root: Path | None = None) -> Path:
        base = root or tmp_path / "ravdess"
        for actor in actors:
            for e in range(1, len(EMOTIONS) + 1):
                for intensity in (1,) if e == 1 else (1, 2):
                    for statement in (1, 2):
                        name = f"03-01-{e:02d}-{intensity:02d}-{statement:02d}-01-{actor:02d}{ext}"
                        folder = base if flat else base / f"Actor_{actor:02d}"
                        folder.mkdir(parents=True, exist_ok=True)
                        y = voiced(seconds, sr, rng, f0=100.0 + 25.0 * e)
                        y = np.concatenate([np.zeros(sr // 4, np.float32), y, np.zeros(sr // 4, np.float32)])
                        sf.write(str(folder / name), y, sr)
        return base

    return _make


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small EmotionCNN trained for a few epochs on synthetic pitch-coded 'emotions', saved as a model folder.

    It is not a good emotion model; it exercises the whole save/load/predict path quickly.
    """
    from voxemo.core.config import AudioConfig, Config, ModelConfig, TrainConfig
    from voxemo.dsp.features import extract
    from voxemo.inference.torch_backend import EmotionClassifier
    from voxemo.nn.train import train_model

    rng = np.random.default_rng(0)
    cfg = Config(audio=AudioConfig(duration=1.0), model=ModelConfig(channels=(4, 8)),
                 train=TrainConfig(epochs=3, batch_size=16))
    specs, labels = [], []
    for i in range(48):
        e = i % len(EMOTIONS)
        specs.append(extract(voiced(0.8, 16000, rng, f0=100.0 + 25.0 * e), 16000, cfg.audio, cfg.features))
        labels.append(e)
    res = train_model(specs, np.array(labels), len(EMOTIONS), cfg, progress=False)
    out = tmp_path_factory.mktemp("model")
    EmotionClassifier(res.model, cfg, EMOTIONS).save(out)
    return out


def voxemo_records(n_speakers: int, clips_per_speaker: int):
    """Utterance records (no audio behind them) for split tests, speakers '01'.., odd = male."""
    from voxemo.core.records import Utterance

    return [Utterance(path=f"s{s:02d}_{i}.wav", corpus="fake", speaker=f"{s:02d}",
                      emotion=EMOTIONS[i % len(EMOTIONS)], gender="male" if s % 2 else "female")
            for s in range(1, n_speakers + 1) for i in range(clips_per_speaker)]


def load_benchmark(name: str) -> ModuleType:
    """A script of ``benchmarks/`` imported as a module (its helpers, e.g. the load test's ``running_server``)."""
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"voxemo_bench_{name}", script)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
