"""Waveform augmentation: the transforms do what they say, copies are seeded and cached, and only training
clips are ever augmented."""

import numpy as np
import pytest

import voxemo.experiment.evaluate as evaluate_mod
from conftest import tone, voiced, voxemo_records
from voxemo.core.config import AudioConfig, AugmentConfig, Config, ModelConfig, TrainConfig
from voxemo.core.errors import ConfigError
from voxemo.core.labels import EMOTIONS
from voxemo.dsp.augment import apply_params, augment_digest, draw_params
from voxemo.experiment.results import FoldJob, FoldResult
from voxemo.io.cache import extract_augmented, extract_many
from voxemo.nn.train import centre_segments, train_model

SR = 22050


def peak_hz(y: np.ndarray, sr: int = SR) -> float:
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.fft.rfftfreq(len(y), 1 / sr)[spectrum.argmax()])


def test_pitch_shift_moves_the_fundamental():
    y = tone(220.0, 1.0, SR)
    up = apply_params(y, SR, {"pitch_semitones": 12.0}, np.random.default_rng(0))
    assert len(up) == len(y)
    assert peak_hz(up) == pytest.approx(440.0, rel=0.03)


def test_time_stretch_changes_the_length_by_the_rate():
    y = tone(220.0, 1.0, SR)
    fast = apply_params(y, SR, {"stretch_rate": 1.25}, np.random.default_rng(0))
    assert len(fast) == pytest.approx(len(y) / 1.25, rel=0.02)
    assert peak_hz(fast) == pytest.approx(220.0, rel=0.03)  # tempo changes, pitch does not


def test_noise_is_added_at_the_requested_snr():
    y = tone(220.0, 2.0, SR)
    noisy = apply_params(y, SR, {"noise_snr_db": 10.0}, np.random.default_rng(0))
    snr = 10 * np.log10(np.mean(y.astype(np.float64) ** 2) / np.mean((noisy - y).astype(np.float64) ** 2))
    assert snr == pytest.approx(10.0, abs=0.3)


def test_equaliser_reshapes_the_spectrum_reproducibly_and_leaves_other_copies_alone():
    rng = np.random.default_rng(0)
    y = (0.1 * rng.standard_normal(SR)).astype(np.float32)  # white noise: every band has energy to cut or boost
    params = {"eq_db": 12.0, "eq_seed": 7}
    a, b = (apply_params(y, SR, params, np.random.default_rng(0)) for _ in range(2))
    assert np.array_equal(a, b) and len(a) == len(y)
    band_db = lambda z: 10 * np.log10([np.mean(b) for b in np.array_split(np.abs(np.fft.rfft(z)) ** 2, 16)])  # noqa: E731
    assert np.ptp(band_db(a) - band_db(y)) > 3  # some bands boosted against others
    other = apply_params(y, SR, {"eq_db": 12.0, "eq_seed": 8}, np.random.default_rng(0))
    assert not np.allclose(other, a)
    # the family is drawn only when configured: the other families' draws (and cached copies) stay as they were
    plain, with_eq = (draw_params(AugmentConfig(p=1.0, eq_db=e), np.random.default_rng(3)) for e in (0.0, 6.0))
    assert {k: v for k, v in with_eq.items() if not k.startswith("eq_")} == plain and with_eq["eq_db"] == 6.0
    assert augment_digest(AugmentConfig()) != augment_digest(AugmentConfig(eq_db=6.0))
    with pytest.raises(ConfigError, match="eq_db"):
        AugmentConfig(eq_db=-1.0)


def test_draws_are_seeded_and_families_switch_off():
    aug = AugmentConfig(p=1.0)
    assert draw_params(aug, np.random.default_rng(3)) == draw_params(aug, np.random.default_rng(3))
    off = draw_params(AugmentConfig(p=1.0, pitch_semitones=0, stretch=0, gain_db=0, noise_snr_db=None),
                      np.random.default_rng(3))
    assert off == {}
    # switching one family off leaves the others' values unchanged
    no_pitch = draw_params(AugmentConfig(p=1.0, pitch_semitones=0), np.random.default_rng(3))
    full = draw_params(aug, np.random.default_rng(3))
    assert no_pitch == {k: v for k, v in full.items() if k != "pitch_semitones"}


def test_augment_config_is_validated_and_round_trips():
    with pytest.raises(ConfigError):
        AugmentConfig(copies=-1)
    with pytest.raises(ConfigError):
        AugmentConfig(noise_snr_db=(30.0, 10.0))
    cfg = Config(augment=AugmentConfig(copies=2, noise_snr_db=None))
    assert Config.from_dict(cfg.to_dict()) == cfg
    assert Config.from_dict({k: v for k, v in cfg.to_dict().items() if k != "augment"}).augment == AugmentConfig()


def test_augmented_copies_are_deterministic_cached_and_differ_from_the_original(make_wav, tmp_path, rng):
    paths = [str(make_wav(f"c{i}.wav", voiced(1.0, 16000, rng, f0=120 + 30 * i), 16000)) for i in range(3)]
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    cfg = Config()
    aug = AugmentConfig(copies=2, p=1.0)
    cache = tmp_path / "cache"
    first = extract_augmented(paths + [str(bad)], cfg.audio, cfg.features, aug, cache_dir=cache, jobs=1,
                              progress=False)
    assert isinstance(first[-1], str) and "bad.wav" in first[-1]
    entries = sorted(p.name for p in cache.rglob("*.npy"))
    assert len(entries) == 6 and all("-aug" in e for e in entries)
    again = extract_augmented(paths, cfg.audio, cfg.features, aug, cache_dir="", jobs=1, progress=False)
    originals = extract_many(paths, cfg.audio, cfg.features, cache_dir="", jobs=1, progress=False)
    for cached, fresh, orig in zip(first, again, originals):
        assert len(cached) == 2
        for c, f in zip(cached, fresh):
            np.testing.assert_allclose(c, f, atol=0.05)  # the cache stores float16
        assert not np.array_equal(cached[0], cached[1])
        assert cached[0].shape != orig.shape or not np.allclose(cached[0], orig, atol=0.5)
    more = extract_augmented(paths, cfg.audio, cfg.features, AugmentConfig(copies=3, p=1.0), cache_dir=cache,
                             jobs=1, progress=False)
    np.testing.assert_array_equal(more[0][1], first[0][1])  # copy i does not depend on the number of copies


def test_training_normalises_on_originals_and_uses_copies(rng):
    cfg = Config(audio=AudioConfig(duration=1.0), model=ModelConfig(channels=(4,)),
                 train=TrainConfig(epochs=2, batch_size=16))
    specs = [rng.normal(-40, 5, (64, 40)).astype(np.float32) for _ in range(16)]
    copies = [[s + 30.0] for s in specs]  # copies far from the originals
    labels = np.arange(16) % len(EMOTIONS)
    res = train_model(specs, labels, len(EMOTIONS), cfg, aug_specs=copies, progress=False)
    expected = centre_segments(specs, 44, -80.0).mean(axis=(0, 2))
    np.testing.assert_allclose(res.model.feature_mean.numpy(), expected, rtol=1e-4)


def test_evaluate_gives_copies_and_speakers_of_training_clips_only(monkeypatch):
    recs = voxemo_records(24, clips_per_speaker=2)
    specs = [np.full((64, 10), i, np.float32) for i in range(len(recs))]
    aug = [[np.full((64, 10), 1000 + i, np.float32)] for i in range(len(recs))]
    captured = []

    def fake_pmap(fn, work, **kwargs):
        captured.extend(work)
        return [FoldResult(w.name, len(w.train_x), len(w.val_x), len(w.test_x), 0.0, 0.0, 0.0, 0.0,
                           probs=np.full((len(w.test_x), 8), 1 / 8)) for w in work]

    monkeypatch.setattr(evaluate_mod, "pmap", fake_pmap)
    evaluate_mod.evaluate(recs, specs, Config(), "actor-6fold", aug_specs=aug, progress=False)
    assert len(captured) == 6
    for job in captured:
        assert isinstance(job, FoldJob)
        train_ids = {int(s[0, 0]) for s in job.train_x}
        test_ids = {int(s[0, 0]) for s in job.test_x}
        aug_ids = {int(a[0][0, 0]) - 1000 for a in job.train_aug}
        assert aug_ids == train_ids and not aug_ids & test_ids
        # the speakers handed on (for train.speaker_adversary) are the training clips', in order
        assert job.speakers == [recs[int(s[0, 0])].speaker for s in job.train_x]
