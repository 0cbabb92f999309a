"""Few-shot fine-tuning, the K-shot protocol, and adaptation inside evaluate, timeline and the stream."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import voiced
from voxemo.apps.cli import main
from voxemo.core.config import AudioConfig, AugmentConfig, Config, ModelConfig, TrainConfig
from voxemo.core.errors import ConfigError
from voxemo.core.labels import EMOTIONS
from voxemo.core.records import Utterance
from voxemo.experiment.crosscorpus import cross_corpus
from voxemo.experiment.fewshot import draw_shots
from voxemo.inference.loading import load_model
from voxemo.inference.stream import EmotionStream
from voxemo.inference.timeline import timeline
from voxemo.nn.finetune import FineTuneConfig, fine_tune
from voxemo.nn.model import EmotionCNN
from voxemo.reports.crosscorpus import write_cross_corpus

TINY = Config(audio=AudioConfig(duration=1.0), model=ModelConfig(channels=(4, 8)),
              train=TrainConfig(epochs=2, batch_size=16), augment=AugmentConfig(copies=0))


def corpus(name: str, speakers: int, emotions: tuple[str, ...], rng: np.random.Generator,
           per_class: int = 4) -> tuple[list[Utterance], list[np.ndarray]]:
    """Records and log-mels where each emotion lifts a different band (learnable, and shifted per corpus)."""
    records, specs = [], []
    for s in range(speakers):
        for emotion in emotions:
            band = 8 * ((EMOTIONS.index(emotion) if emotion in EMOTIONS else 7) % 8)
            for i in range(per_class):
                spec = rng.normal(-40, 5, (64, int(rng.integers(30, 60)))).astype(np.float32)
                spec[band : band + 8] += 25
                records.append(Utterance(path=f"{name}/{s}_{emotion}_{i}.wav", corpus=name, speaker=f"{name}{s}",
                                         emotion=emotion))
                specs.append(spec + (6.0 if name == "target" else 0.0))
    return records, specs


def test_shots_come_from_one_half_of_the_speakers_and_are_scored_on_the_other(rng: np.random.Generator) -> None:
    records, _ = corpus("target", 6, ("neutral", "happy", "sad", "angry", "boredom"), rng)
    shots, test = draw_shots(records, ["neutral", "happy", "sad", "angry"], 3, np.random.default_rng([0, 1]))
    labelled = {records[i].speaker for i in shots}
    assert len(shots) == 12 and len(labelled) <= 3
    assert labelled.isdisjoint({records[i].speaker for i in test})
    assert len(test) == 3 * 5 * 4  # every clip of the other half, boredom too (the scoring leaves it out)
    assert shots == draw_shots(records, ["neutral", "happy", "sad", "angry"], 3, np.random.default_rng([0, 1]))[0]


def test_head_fine_tuning_moves_only_the_head_and_fits_the_shots(rng: np.random.Generator) -> None:
    torch.manual_seed(0)
    cnn = EmotionCNN(64, 8, TINY.model).eval()
    records, specs = corpus("target", 1, ("neutral", "happy", "sad", "angry"), rng, per_class=5)
    y = np.array([EMOTIONS.index(r.emotion) for r in records])
    before = copy.deepcopy(cnn.state_dict())
    losses = fine_tune(cnn, specs, y, TINY, FineTuneConfig(scope="head", steps=60, lr=0.05))[0]
    changed = {k for k, v in cnn.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"classifier.weight", "classifier.bias"}
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:5])
    with pytest.raises(ConfigError, match="scope='everything' is not one of head, norm, all"):
        FineTuneConfig(scope="everything")


def test_cross_corpus_reports_adaptation_and_the_learning_curve(rng: np.random.Generator, tmp_path: Path) -> None:
    train, train_specs = corpus("source", 4, ("neutral", "happy", "sad", "angry", "calm"), rng)
    test, test_specs = corpus("target", 4, ("neutral", "happy", "sad", "angry", "boredom"), rng)
    result = cross_corpus(train, train_specs, test, test_specs, TINY, adapt=True, shots=(0, 2), draws=2,
                          progress=False)
    assert result.adapted is not None and result.adapted.four_class is not None
    assert [p.k for p in result.shots] == [0, 2] and all(len(p.uar) == 2 for p in result.shots)
    assert result.adaptation is not None and result.adaptation["clips"] == len(test)
    out = write_cross_corpus(result, tmp_path / "report")
    for name in ("shots.csv", "shots.png", "report.md", "metrics.json"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert [p["k"] for p in metrics["shots"]] == [0, 2] and "adapted" in metrics
    assert "## Few-shot adaptation" in (out / "report.md").read_text()


def test_evaluate_command_with_adapt_and_shots(fake_ravdess, tmp_path: Path,  # type: ignore[no-untyped-def]
                                               capsys: pytest.CaptureFixture[str]) -> None:
    source = fake_ravdess(actors=(1, 2, 3, 4), root=tmp_path / "a")
    target = fake_ravdess(actors=(5, 6, 7, 8), root=tmp_path / "b")
    common = ["--epochs", "2", "--set", "augment.copies=0", "--set", "model.channels=[4,8]", "--set",
              "audio.duration=1.0", "--jobs", "1"]
    assert main(["-q", "evaluate", "--train", str(source), "--test", str(target), "--adapt", "--shots", "0,2",
                 "--draws", "2", "--out", str(tmp_path / "x"), *common]) == 0
    line = capsys.readouterr().out
    assert "; adapted: UAR " in line and "; 2 shots: UAR " in line
    assert (tmp_path / "x" / "shots.png").is_file()
    assert main(["-q", "evaluate", str(source), "--shots", "2", "--out", str(tmp_path / "y"), *common]) == 2
    assert "--shots is a cross-corpus protocol" in capsys.readouterr().err


def test_evaluate_a_protocol_adapted_and_through_a_telephone_line(fake_ravdess, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    data = fake_ravdess(actors=(1, 2, 3, 4, 5, 6), root=tmp_path / "a")
    common = ["--epochs", "1", "--set", "augment.copies=0", "--set", "model.channels=[4,8]", "--set",
              "audio.duration=1.0", "--jobs", "1", "--protocol", "speaker-6fold"]
    assert main(["-q", "evaluate", str(data), "--adapt", "--test-channel", "telephone", "--out", str(tmp_path / "x"),
                 *common]) == 0
    assert capsys.readouterr().out.startswith("speaker-6fold adapted: accuracy ")
    metrics = json.loads((tmp_path / "x" / "metrics.json").read_text())
    assert len(metrics["folds"]) == 6


def long_recording(path: Path, rng: np.random.Generator, seconds: int = 48, sr: int = 16000) -> Path:
    parts = []
    for i in range(seconds // 4):
        parts += [voiced(3.0, sr, rng, f0=120.0 + 7 * (i % 5)), np.zeros(sr, np.float32)]
    sf.write(str(path), np.concatenate(parts), sr)
    return path


def test_timeline_adapts_to_the_recordings_own_speech(rng: np.random.Generator, tmp_path: Path) -> None:
    path = long_recording(tmp_path / "call.wav", rng)
    model = load_model()
    plain = timeline(path, model)
    adapted = timeline(path, model, adapt=True)
    assert plain.adapted is None and adapted.adapted is not None and adapted.adapted["clips"] > 0
    assert 30 <= adapted.adapted["speech_seconds"] <= 48 and "adapted" in adapted.to_dict()
    assert [(s.start, s.end) for s in plain.windows] == [(s.start, s.end) for s in adapted.windows]
    assert any(a.probabilities != b.probabilities for a, b in zip(plain.windows, adapted.windows))
    assert timeline(path, model) == plain  # the model given is not changed


def test_timeline_adapt_with_too_little_speech_is_one_line(rng: np.random.Generator, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = long_recording(tmp_path / "short.wav", rng, seconds=8)
    assert main(["-q", "timeline", str(path), "--adapt"]) == 2
    err = capsys.readouterr().err
    assert "too little speech to adapt on" in err and err.count("\n") == 1


def test_stream_adapts_after_its_warm_up_and_keeps_the_model_given(rng: np.random.Generator) -> None:
    model = load_model()
    sr = 16000
    audio = np.concatenate([np.concatenate([voiced(3.0, sr, rng, f0=130.0), np.zeros(sr // 2, np.float32)])
                            for _ in range(12)])
    stream = EmotionStream(model, sr, adapt=10.0)
    updates = [u for i in range(0, len(audio), sr) for u in stream.feed(audio[i : i + sr])] + stream.flush()
    assert stream.adaptations >= 2 and stream.model is not model and stream.base_model is model
    assert stream.heard_seconds > 20 and model.adaptation is None
    plain = EmotionStream(model, sr)
    reference = [u for i in range(0, len(audio), sr) for u in plain.feed(audio[i : i + sr])] + plain.flush()
    first = next(i for i, u in enumerate(updates) if u.speech)
    assert updates[first] == reference[first]  # before the warm-up: the model as given
    assert updates[-2:] != reference[-2:]
    with pytest.raises(ConfigError, match="adapt="):
        EmotionStream(model, sr, adapt=-1)
