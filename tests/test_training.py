"""Training, splits, metrics and the model folder round trip, on synthetic data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import voiced, voxemo_records
from voxemo.core.config import AudioConfig, Config, ModelConfig, TrainConfig
from voxemo.core.errors import AudioError, ConfigError, ModelError
from voxemo.core.labels import EMOTIONS
from voxemo.dsp.features import extract, pad_value, segment_frames
from voxemo.experiment.evaluate import evaluate
from voxemo.experiment.metrics import scores, top_confusions
from voxemo.experiment.splits import random_split, speaker_folds
from voxemo.inference.loading import load_model
from voxemo.inference.torch_backend import EmotionClassifier
from voxemo.nn.model import EmotionCNN, EmotionEnsemble, ResidualConv
from voxemo.nn.train import SpeakerAdversary, centre_segments, train_model
from voxemo.reports.evaluation import write_evaluation


def test_bias_init_gives_prior_predictions():
    m = EmotionCNN(16, 3, ModelConfig(channels=(4,)))
    torch.nn.init.zeros_(m.classifier.weight)
    m.init_output_bias(np.array([0.5, 0.25, 0.25]))
    probs = torch.softmax(m(torch.randn(2, 16, 20)), dim=1)
    assert torch.allclose(probs[0], torch.tensor([0.5, 0.25, 0.25]), atol=1e-5)


def _pitch_task(n_per_class: int, rng: np.random.Generator, cfg: Config) -> tuple[list[np.ndarray], np.ndarray]:
    specs, labels = [], []
    for c, f0 in enumerate((110.0, 220.0, 440.0)):
        for _ in range(n_per_class):
            y = voiced(0.6 + 0.4 * rng.random(), 16000, rng, f0=f0 * (1 + 0.05 * rng.standard_normal()))
            specs.append(extract(y, 16000, cfg.audio, cfg.features))
            labels.append(c)
    return specs, np.array(labels)


def test_training_learns_a_separable_task_and_is_reproducible(rng):
    cfg = Config(audio=AudioConfig(duration=1.0), model=ModelConfig(channels=(8, 16)),
                 train=TrainConfig(epochs=20, batch_size=16, patience=5))
    specs, labels = _pitch_task(40, rng, cfg)
    val_specs, val_labels = _pitch_task(6, rng, cfg)
    res = train_model(specs, labels, 3, cfg, val_specs=val_specs, val_labels=val_labels, progress=False)
    assert res.best()["val_accuracy"] > 0.8
    assert 1 <= res.best_epoch <= len(res.history) <= 20
    again = train_model(specs, labels, 3, cfg, val_specs=val_specs, val_labels=val_labels, progress=False)
    assert [h["train_loss"] for h in again.history] == pytest.approx([h["train_loss"] for h in res.history])


def test_an_ensemble_averages_members_trained_with_consecutive_seeds(rng, tmp_path):
    """Member i is exactly the single model of seed + i; the ensemble's probabilities are the members' mean; it
    saves, loads (torch and ONNX) and predicts like one model."""
    cfg = Config(audio=AudioConfig(duration=1.0), model=ModelConfig(channels=(4, 8)),
                 train=TrainConfig(epochs=4, batch_size=16, seed=3))
    specs, labels = _pitch_task(12, rng, cfg)
    val_specs, val_labels = _pitch_task(3, rng, cfg)
    ens_cfg = cfg.replace(model=cfg.model.replace(members=2))
    res = train_model(specs, labels, 3, ens_cfg, val_specs=val_specs, val_labels=val_labels, progress=False)
    assert isinstance(res.model, EmotionEnsemble) and len(res.model.members) == 2 and res.model.n_classes == 3
    singles = [train_model(specs, labels, 3, cfg.replace(train=cfg.train.replace(seed=s)), val_specs=val_specs,
                           val_labels=val_labels, progress=False) for s in (3, 4)]
    for member, single in zip(res.model.members, singles):
        for (k, a), b in zip(member.state_dict().items(), single.model.state_dict().values()):
            assert torch.equal(a, b), k
    assert res.history[0]["train_loss"] == pytest.approx(np.mean([r.history[0]["train_loss"] for r in singles]))
    assert res.best_epoch == round(np.mean([r.best_epoch for r in singles]))

    x = centre_segments(val_specs, segment_frames(cfg.audio, cfg.features), pad_value(cfg.features))
    with torch.no_grad():
        mean = np.mean([torch.softmax(r.model(torch.from_numpy(x)), 1).numpy() for r in singles], axis=0)
    clf = EmotionClassifier(res.model, ens_cfg, ["a", "b", "c"])
    np.testing.assert_allclose(clf.segment_proba(x), mean, atol=1e-6)
    clf.save(tmp_path / "m", onnx=True)
    for backend in ("torch", "onnx"):
        again = load_model(tmp_path / "m", backend=backend)
        assert again.config.model.members == 2
        np.testing.assert_allclose(again.segment_proba(x), mean, atol=1e-5)
    with pytest.raises(ConfigError, match="members"):
        ModelConfig(members=0)


def test_ensemble_members_can_differ_in_architecture(rng, tmp_path):
    """``member_options`` gives each member its own fields; member i is the single model of that config and seed
    + i, and the mixed ensemble saves, reloads and exports like any model."""
    cfg = Config(audio=AudioConfig(duration=1.0),
                 model=ModelConfig(channels=(4, 8), members=2, member_options=({}, {"recurrent": 4})),
                 train=TrainConfig(epochs=2, batch_size=16, seed=5))
    specs, labels = _pitch_task(6, rng, cfg)
    res = train_model(specs, labels, 3, cfg, progress=False)
    assert [m.recurrent is None for m in res.model.members] == [True, False]
    single = train_model(specs, labels, 3, cfg.replace(model=cfg.model.member(1), train=cfg.train.replace(seed=6)),
                         progress=False)
    for (k, a), b in zip(res.model.members[1].state_dict().items(), single.model.state_dict().values()):
        assert torch.equal(a, b), k
    clf = EmotionClassifier(res.model, cfg, ["a", "b", "c"])
    clf.save(tmp_path / "m", onnx=True)
    x = centre_segments(specs, segment_frames(cfg.audio, cfg.features), pad_value(cfg.features))
    for backend in ("torch", "onnx"):
        again = load_model(tmp_path / "m", backend=backend)
        assert again.config.model == cfg.model
        np.testing.assert_allclose(again.segment_proba(x), clf.segment_proba(x), atol=1e-5)
    with pytest.raises(ConfigError, match="one dict per member"):
        ModelConfig(members=3, member_options=({}, {}))
    with pytest.raises(ConfigError, match="recurrent"):
        ModelConfig(members=2, member_options=({}, {"recurrent": -2}))
    with pytest.raises(ConfigError, match="must be a dict"):
        ModelConfig(members=2, member_options=({}, 5))


@pytest.mark.parametrize("options", [{"freq_pooling": "flatten"}, {"recurrent": 6}, {"residual": True},
                                     {"freq_pooling": "flatten", "recurrent": 5, "pooling": "attention"}])
def test_architecture_options_train_save_and_export(options, rng, tmp_path):
    """Keeping the mel position (flatten), a GRU over time steps and residual convolutions change the network, not
    its interface: the model trains, saves, reloads, and exports to ONNX with the same probabilities."""
    cfg = Config(audio=AudioConfig(duration=1.0), model=ModelConfig(channels=(4, 8), **options),
                 train=TrainConfig(epochs=2, batch_size=16))
    specs, labels = _pitch_task(6, rng, cfg)
    res = train_model(specs, labels, 3, cfg, progress=False)
    plain = EmotionCNN(cfg.features.n_mels, 3, ModelConfig(channels=(4, 8)))
    n_params = sum(p.numel() for p in res.model.parameters())
    assert n_params > sum(p.numel() for p in plain.parameters())
    if "recurrent" in options:
        assert isinstance(res.model.recurrent, torch.nn.GRU)
    if "residual" in options:
        assert sum(isinstance(m, ResidualConv) for m in res.model.features) == len(cfg.model.channels)
    EmotionClassifier(res.model, cfg, ["a", "b", "c"]).save(tmp_path / "m", onnx=True)
    x = centre_segments(specs, segment_frames(cfg.audio, cfg.features), pad_value(cfg.features))
    torch_p = load_model(tmp_path / "m", backend="torch").segment_proba(x)
    assert load_model(tmp_path / "m", backend="torch").config.model == cfg.model
    np.testing.assert_allclose(load_model(tmp_path / "m", backend="onnx").segment_proba(x), torch_p, atol=1e-5)
    with pytest.raises(ConfigError, match="freq_pooling"):
        ModelConfig(freq_pooling="sum")
    with pytest.raises(ConfigError, match="recurrent"):
        ModelConfig(recurrent=-1)


def test_weight_averaging_keeps_the_moving_average(rng):
    """With ``train.ema`` the kept weights are the moving average of the trajectory: a decay near 0 keeps the
    last step's weights (the run without it), a real decay other weights, both reproducibly."""
    cfg = Config(audio=AudioConfig(duration=1.0), model=ModelConfig(channels=(4, 8)),
                 train=TrainConfig(epochs=3, batch_size=16))
    specs, labels = _pitch_task(8, rng, cfg)

    def weights(ema: float) -> list[torch.Tensor]:
        res = train_model(specs, labels, 3, cfg.replace(train=cfg.train.replace(ema=ema)), progress=False)
        return [v.float() for v in res.model.state_dict().values()]

    plain, nearly_last, averaged = weights(0.0), weights(1e-12), weights(0.9)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(plain, nearly_last))
    assert not all(torch.allclose(a, b, atol=1e-4) for a, b in zip(plain, averaged))
    assert all(torch.equal(a, b) for a, b in zip(averaged, weights(0.9)))
    with pytest.raises(ConfigError, match="ema"):
        TrainConfig(ema=1.0)


def test_speaker_folds_are_speaker_independent():
    recs = voxemo_records(24, clips_per_speaker=4)
    folds = speaker_folds(recs, val_speakers=4, seed=0)
    assert len(folds) == 6
    for k, f in enumerate(folds):
        spk = lambda ix: {recs[i].speaker for i in ix}  # noqa: E731
        assert spk(f.test) == {f"{a:02d}" for a in range(4 * k + 1, 4 * k + 5)}
        assert not spk(f.train) & spk(f.test) and not spk(f.val) & spk(f.test) and not spk(f.train) & spk(f.val)
        assert len(spk(f.val)) == 4 and len(f.train) + len(f.val) + len(f.test) == len(recs)
        assert {recs[i].gender for i in f.val} == {"male", "female"}


def test_random_split_is_stratified_and_leaks_speakers():
    recs = voxemo_records(24, clips_per_speaker=8)
    s = random_split(recs, seed=0)
    assert len(s.test) == pytest.approx(0.2 * len(recs), abs=2)
    assert {recs[i].speaker for i in s.test} & {recs[i].speaker for i in s.train}
    assert len(set(s.train) | set(s.val) | set(s.test)) == len(recs)


def test_scores_and_confusions():
    y = np.array([0, 0, 0, 1, 1, 2])
    p = np.array([0, 0, 1, 1, 1, 0])
    s = scores(y, p, 3)
    assert s["accuracy"] == pytest.approx(4 / 6)
    assert s["uar"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    top = top_confusions([[2, 1, 0], [0, 2, 0], [1, 0, 0]], ["a", "b", "c"])
    assert {(t["true"], t["predicted"]) for t in top} == {("a", "b"), ("c", "a")}


def test_evaluate_writes_reports(tmp_path, rng):
    cfg = Config(audio=AudioConfig(duration=1.0), model=ModelConfig(channels=(4,)),
                 train=TrainConfig(epochs=2, batch_size=32, val_speakers=2))
    recs = voxemo_records(24, clips_per_speaker=2)
    specs = [extract(voiced(0.5, 16000, rng, f0=100 + 20 * EMOTIONS.index(r.emotion)), 16000, cfg.audio,
                     cfg.features) for r in recs]
    result = evaluate(recs, specs, cfg, "actor-6fold", progress=False)
    write_evaluation(result, tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert len(metrics["folds"]) == 6 and metrics["confusion_labels"] == list(EMOTIONS)
    assert np.asarray(metrics["confusion"]).sum() == len(recs)
    for name in ("report.md", "confusion.png", "predictions.csv"):
        assert (tmp_path / name).stat().st_size > 0


def test_model_folder_round_trip(tiny_model_dir, rng):
    clf = load_model(tiny_model_dir)
    y = voiced(1.2, 16000, rng)
    p = clf.predict_proba(y, sr=16000)
    assert p.shape == (len(EMOTIONS),) and p.sum() == pytest.approx(1, abs=1e-5)
    assert clf.predict(y, sr=16000) in EMOTIONS
    batch = clf.predict_proba([y, voiced(4.0, 16000, rng)], sr=16000)  # the 4 s clip is covered by windows
    assert batch.shape == (2, len(EMOTIONS)) and np.allclose(batch[0], p)
    assert list(clf.classes_) == list(EMOTIONS)
    with pytest.raises(AudioError, match="sample rate"):
        clf.predict_proba(y)


def test_model_folder_refuses_pickled_objects(tiny_model_dir, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(tiny_model_dir, bad)

    class Evil:
        def __reduce__(self):
            return (print, ("unpickled!",))

    torch.save({"x": Evil()}, bad / "weights.pt")
    with pytest.raises(ModelError, match="cannot load"):
        EmotionClassifier.load(bad)
    with pytest.raises(ModelError, match="not a voxemo model"):
        EmotionClassifier.load(tmp_path)


def test_gradient_reversal_flips_and_scales_the_gradient():
    x = torch.randn(4, 6, requires_grad=True)
    adversary = SpeakerAdversary(6, 3)
    adversary(x, 0.5).sum().backward()
    ref = x.detach().clone().requires_grad_()
    adversary.net(ref).sum().backward()
    torch.testing.assert_close(x.grad, -0.5 * ref.grad)


def test_speaker_adversary_trains_reproducibly_and_is_not_saved(rng):
    """``train.speaker_adversary`` adds a speaker loss to the history and changes the weights reproducibly, but the
    kept model is the plain CNN (same parameters, same interface); it needs the speakers; weight 0 is the plain run."""
    cfg = Config(audio=AudioConfig(duration=1.0), model=ModelConfig(channels=(4, 8)),
                 train=TrainConfig(epochs=3, batch_size=16))
    specs, labels = _pitch_task(8, rng, cfg)
    speakers = [f"s{i % 4}" for i in range(len(specs))]

    def run(weight: float, **kw):
        return train_model(specs, labels, 3, cfg.replace(train=cfg.train.replace(speaker_adversary=weight)),
                           progress=False, **kw)

    plain, adv, again = run(0.0), run(1.0, speakers=speakers), run(1.0, speakers=speakers)
    assert "speaker_loss" in adv.history[0] and "speaker_loss" not in plain.history[0]
    assert adv.model.state_dict().keys() == plain.model.state_dict().keys()
    assert not all(torch.allclose(a.float(), b.float(), atol=1e-4)
                   for a, b in zip(plain.model.state_dict().values(), adv.model.state_dict().values()))
    assert all(torch.equal(a, b) for a, b in zip(adv.model.state_dict().values(), again.model.state_dict().values()))
    assert all(torch.equal(a, b) for a, b in zip(plain.model.state_dict().values(),
                                                 run(0.0, speakers=speakers).model.state_dict().values()))
    with pytest.raises(ConfigError, match="speaker_adversary"):
        run(1.0)
    with pytest.raises(ConfigError, match="speaker_adversary"):
        TrainConfig(speaker_adversary=-1)
