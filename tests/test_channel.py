"""The simulated telephone channel, telephone augmentation, and the domain-generalisation layers of the CNN."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from voxemo.core.config import AugmentConfig, ModelConfig
from voxemo.core.errors import ConfigError
from voxemo.dsp.augment import augment_digest, draw_params
from voxemo.dsp.channel import mu_law, simulate, telephone
from voxemo.nn.model import EmotionCNN, MixStyle, RelaxedFreqNorm


def band_energy(y: np.ndarray, sr: int, low: float, high: float) -> float:
    spectrum = np.abs(np.fft.rfft(y)) ** 2
    freqs = np.fft.rfftfreq(len(y), 1 / sr)
    return float(spectrum[(freqs >= low) & (freqs < high)].sum())


def test_telephone_keeps_the_voice_band_and_drops_the_rest(rng: np.random.Generator) -> None:
    sr = 22050
    y = (0.1 * rng.standard_normal(sr)).astype(np.float32)
    z = telephone(y, sr)
    assert z.shape == y.shape and z.dtype == np.float32
    inside = band_energy(z, sr, 500, 3000) / band_energy(y, sr, 500, 3000)
    above = band_energy(z, sr, 4500, 11000) / band_energy(y, sr, 4500, 11000)
    below = band_energy(z, sr, 20, 120) / band_energy(y, sr, 20, 120)
    assert inside > 0.5 and above < 1e-3 and below < 0.05


def test_mu_law_has_256_levels_and_keeps_order(rng: np.random.Generator) -> None:
    x = np.sort(rng.uniform(-1, 1, 20000)).astype(np.float32)
    y = mu_law(x)
    assert len(np.unique(y)) <= 256 and np.all(np.diff(y) >= 0)
    assert np.abs(y - x).max() < 0.04  # coarse steps only near full scale
    quiet = np.linspace(-0.01, 0.01, 101, dtype=np.float32)
    assert np.abs(mu_law(quiet) - quiet).max() < 0.001  # fine steps for quiet samples


def test_unknown_channel_is_a_config_error() -> None:
    assert np.array_equal(simulate(np.ones(4, np.float32), 8000, "wideband"), np.ones(4, np.float32))
    with pytest.raises(ConfigError, match="channel='gsm' is not one of wideband, telephone"):
        simulate(np.ones(4, np.float32), 8000, "gsm")


def test_telephone_augmentation_is_drawn_only_when_configured() -> None:
    assert "telephone" in draw_params(AugmentConfig(telephone=1.0), np.random.default_rng(0))
    assert "telephone" not in draw_params(AugmentConfig(), np.random.default_rng(0))
    assert augment_digest(AugmentConfig(telephone=0.0)) == augment_digest(AugmentConfig())  # old caches still count
    assert augment_digest(AugmentConfig(telephone=0.3)) != augment_digest(AugmentConfig())
    with pytest.raises(ConfigError, match="telephone"):
        AugmentConfig(telephone=1.5)


def test_relaxed_frequency_norm_ignores_a_clips_spectral_colour() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 4, 8, 30)
    coloured = x * torch.linspace(0.5, 3.0, 8)[None, None, :, None] + torch.linspace(-2, 2, 8)[None, None, :, None]
    full = RelaxedFreqNorm(1.0)
    torch.testing.assert_close(full(coloured), full(x), atol=1e-4, rtol=1e-4)  # per-band gain and offset: gone
    relaxed = RelaxedFreqNorm(0.5)
    assert not torch.allclose(relaxed(coloured), relaxed(x), atol=1e-3)  # relaxed: some of it stays


def test_mixstyle_only_acts_while_training() -> None:
    torch.manual_seed(0)
    x = torch.randn(6, 4, 8, 30)
    layer = MixStyle(p=1.0)
    assert not torch.allclose(layer.train()(x), x)
    assert torch.equal(layer.eval()(x), x)


def test_generalisation_options_leave_the_default_network_as_it_was() -> None:
    plain, options = EmotionCNN(64, 8, ModelConfig()), EmotionCNN(64, 8, ModelConfig(freq_norm=0.5, mixstyle=0.5))
    assert [k for k in plain.state_dict()] == [k for k in EmotionCNN(64, 8, ModelConfig()).state_dict()]
    assert len(options.features) == len(plain.features) + 4
    assert options.eval()(torch.randn(2, 64, 130)).shape == (2, 8)
    with pytest.raises(ConfigError, match="freq_norm"):
        ModelConfig(freq_norm=2.0)
