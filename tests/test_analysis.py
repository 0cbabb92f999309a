"""Corpus audio analysis (voxemo.experiment.analysis, voxemo.reports.analysis) and report figures
(voxemo.reports.plots)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

from voxemo.core.config import AudioConfig
from voxemo.core.errors import AudioError, ConfigError
from voxemo.core.records import Utterance
from voxemo.corpus import load_ravdess
from voxemo.experiment.analysis import (
    MAX_ENERGY_TOLERANCE,
    MEAN_ENERGY_TOLERANCE,
    clip_stats,
    describe,
    energy_outside,
    loudness_lufs,
    recommend,
    round_up,
    sweep_table,
)
from voxemo.reports import plots
from voxemo.reports.analysis import PLOT_FILES
from voxemo.workflows.analysis import analyze

SR = 22050


def tone(freq: float = 220.0, seconds: float = 1.0, sr: int = SR, *, amp: float = 0.3,
         silence: float = 0.0) -> np.ndarray:
    """A sine of ``seconds`` inside ``silence`` seconds of zeros on both sides (conftest's ``tone`` is not
    importable under ``--import-mode=importlib``)."""
    t = np.arange(int(seconds * sr)) / sr
    pad = np.zeros(int(silence * sr), dtype=np.float32)
    return np.concatenate([pad, (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32), pad])


def _strict_json(text: str) -> dict:
    """json.loads that rejects NaN / Infinity (not valid JSON)."""

    def reject(token: str) -> float:
        raise ValueError(f"non-standard JSON constant {token}")

    return json.loads(text, parse_constant=reject)


# ------------------------------------------------------------------------------------------ per-clip


def test_full_scale_sine_levels() -> None:
    y = tone(1000.0, seconds=2.0, sr=48000, amp=1.0)
    st = clip_stats(y, 48000, target_sr=SR, thresholds=(30,))
    assert st.duration_s == pytest.approx(2.0)
    assert (st.sample_rate, st.channels) == (48000, 1)
    assert st.peak_dbfs == pytest.approx(0.0, abs=0.01)
    assert st.rms_dbfs == pytest.approx(-3.01, abs=0.02)
    # BS.1770: a full-scale 1 kHz sine reads about -3 LUFS (K-weighting is ~+0.7 dB at 1 kHz).
    assert st.lufs == pytest.approx(-3.0, abs=1.0)


def test_levels_use_the_mono_downmix() -> None:
    left = tone(440.0, seconds=1.0, sr=SR, amp=0.5)
    st = clip_stats(np.stack([left, np.zeros_like(left)], axis=1), SR, target_sr=SR, thresholds=(30,))
    assert st.channels == 2
    assert st.peak_dbfs == pytest.approx(20 * math.log10(0.25), abs=0.01)


def test_tone_in_silence_loses_the_silence_and_no_energy() -> None:
    y = tone(220.0, seconds=1.0, sr=44100, amp=0.3, silence=0.5)
    st = clip_stats(y, 44100, target_sr=SR, thresholds=(20, 30, 60))
    for cut in st.cuts:
        assert cut.removed_s == pytest.approx(1.0, abs=0.1)
        assert cut.kept_s + cut.removed_s == pytest.approx(2.0, abs=1e-3)
        assert cut.energy_removed < 1e-3


def test_energy_removed_rises_when_trimming_bites_into_sound() -> None:
    # 0.5 s loud tone, then 0.5 s of the same tone 25 dB down: a 15 dB threshold cuts the quiet half.
    loud = tone(220.0, seconds=0.5, sr=SR, amp=0.5)
    quiet = loud * 10 ** (-25 / 20)
    st = clip_stats(np.concatenate([loud, quiet]), SR, target_sr=SR, thresholds=(15, 40))
    aggressive, gentle = st.cut(15), st.cut(40)
    expected = 10 ** (-25 / 10) / (1 + 10 ** (-25 / 10))  # quiet half's share of the energy
    assert aggressive.removed_s == pytest.approx(0.5, abs=0.06)
    assert aggressive.energy_removed == pytest.approx(expected, rel=0.3)
    assert gentle.removed_s < 0.05 and gentle.energy_removed < 1e-4


def test_energy_outside() -> None:
    y = np.array([1.0, 1.0, 2.0, 0.0])
    assert energy_outside(y, 2, 4) == pytest.approx(2 / 6)
    assert energy_outside(y, 0, 4) == 0.0
    assert energy_outside(np.zeros(4), 1, 2) == 0.0


def test_loudness_of_clip_shorter_than_one_block_is_nan() -> None:
    assert math.isnan(loudness_lufs(tone(seconds=0.3, sr=SR), SR))
    st = clip_stats(tone(seconds=0.3, sr=SR), SR, target_sr=16000, thresholds=(30,))
    assert math.isnan(st.lufs) and math.isfinite(st.rms_dbfs)


def test_silent_clip_is_rejected() -> None:
    with pytest.raises(AudioError, match="silent"):
        clip_stats(np.zeros(SR, np.float32), SR, target_sr=SR, thresholds=(30,), name="x.wav")


# --------------------------------------------------------------------------------------- aggregation


def test_describe() -> None:
    d = describe([1.0, 2.0, 3.0, 4.0, float("nan"), float("-inf")])
    assert (d["count"], d["missing"]) == (4, 2)
    assert d["mean"] == 2.5 and d["min"] == 1.0 and d["max"] == 4.0 and d["p50"] == 2.5
    assert d["std"] == pytest.approx(np.std([1, 2, 3, 4]))
    assert describe([float("nan")])["mean"] is None


def test_round_up() -> None:
    assert round_up(2.5) == 2.5
    assert round_up(2.51) == 2.75
    assert round_up(2.926) == 3.0


def _row(top_db: float, mean: float, worst: float, p95: float, below: int = 0) -> dict:
    return {"top_db": top_db, "mean_energy_removed": mean, "max_energy_removed": worst,
            "n_below_min_duration": below, "trimmed_p95_s": p95}


def test_recommend_picks_the_most_aggressive_threshold_within_tolerance() -> None:
    sweep = [
        _row(15, 0.004, 0.08, 2.2),  # bites into speech
        _row(25, 0.00005, 0.002, 2.4),  # mean fine, one clip loses too much
        _row(30, 0.00005, 0.0005, 2.6, below=1),  # one clip becomes too short
        _row(35, 0.00004, 0.0005, 2.93),
        _row(40, 0.00001, 0.0001, 3.3),
    ]
    rec = recommend(sweep[::-1], untrimmed_p95_s=4.0, min_duration=0.25)
    assert rec["top_db"] == 35.0
    assert rec["duration"] == 3.0
    assert rec["qualified"] == {"15": False, "25": False, "30": False, "35": True, "40": True}
    assert f"{MEAN_ENERGY_TOLERANCE:.2%}" in rec["rule"] and f"{MAX_ENERGY_TOLERANCE:.2%}" in rec["rule"]


def test_recommend_disables_trimming_when_no_threshold_is_safe() -> None:
    rec = recommend([_row(20, 0.01, 0.1, 2.0)], untrimmed_p95_s=4.1, min_duration=0.25)
    assert rec["top_db"] == 0.0 and rec["duration"] == 4.25


def test_recommend_keeps_duration_within_config_bounds() -> None:
    rec = recommend([_row(30, 0.0, 0.0, 0.1)], untrimmed_p95_s=4.0, min_duration=0.5, max_duration=10.0)
    assert rec["duration"] == 0.5


def test_sweep_table_counts_clips_below_min_duration() -> None:
    # Trimming keeps about one analysis frame (~0.09 s) around the sound: 0.1 s of tone stays under 0.25 s.
    short = clip_stats(tone(seconds=0.1, sr=SR, silence=0.5), SR, target_sr=SR, thresholds=(30,))
    longer = clip_stats(tone(seconds=1.0, sr=SR, silence=0.5), SR, target_sr=SR, thresholds=(30,))
    (row,) = sweep_table([short, longer], (30,), min_duration=0.25, paths=["short.wav", "long.wav"])
    assert row["n_below_min_duration"] == 1
    assert row["total_removed_s"] == pytest.approx(2.0, abs=0.2)
    assert row["kept_fraction"] == pytest.approx(1.1 / 3.1, abs=0.07)
    assert row["trimmed_max_s"] == pytest.approx(1.0, abs=0.1)


# ------------------------------------------------------------------------------------------ analyze


def test_analyze_fake_corpus_with_a_broken_file(fake_ravdess, tmp_path: Path) -> None:
    # 30 clips: 1 s of voice inside 0.25 s of silence each side; plus one broken file.
    root = fake_ravdess(actors=(1,), sr=16000, seconds=1.0)
    broken = root / "Actor_01" / "03-01-01-01-01-02-01.wav"
    broken.write_bytes(b"RIFF....WAVEfmt garbage")
    records = load_ravdess(root)
    out = tmp_path / "analysis"

    summary = analyze(records, out, thresholds=(20, 30, 40), jobs=1, progress=False)

    for name in ("clips.csv", "summary.json", "report.md", *PLOT_FILES.values()):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert summary == _strict_json((out / "summary.json").read_text())
    assert summary["n_clips"] == len(records) == 31 and summary["n_analysed"] == 30
    (failure,) = summary["failures"]
    assert failure["path"] == str(broken) and "\n" not in failure["error"] and str(broken) in failure["error"]
    assert summary["sample_rates"] == {"16000": 30} and summary["audio"] == AudioConfig().to_dict()

    with open(out / "clips.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 31
    assert [r["path"] for r in rows if r["error"]] == [str(broken)]
    ok = [r for r in rows if not r["error"]]
    assert all(float(r["duration_s"]) == pytest.approx(1.5) for r in ok)
    assert all(float(r["trim30_removed_s"]) == pytest.approx(0.5, abs=0.1) for r in ok)
    assert all(float(r["trim30_energy_removed"]) < 1e-3 for r in ok)

    assert set(summary["by_emotion"]) == {"neutral", "calm", "happy", "sad", "angry", "fearful", "disgust",
                                          "surprised"}
    assert summary["by_emotion"]["neutral"]["duration_s"]["count"] == 2  # the third neutral clip is broken
    assert set(summary["by_gender"]) == {"male"} and set(summary["by_speaker"]) == {"01"}
    assert set(summary["by_intensity"]) == {"normal", "strong"}

    sweep = {r["top_db"]: r for r in summary["sweep"]}
    assert list(sweep) == [20.0, 30.0, 40.0]
    assert sweep[30.0]["mean_removed_s"] == pytest.approx(0.5, abs=0.1)

    rec = summary["recommended"]
    passing = [t for t, r in sweep.items() if r["mean_energy_removed"] <= MEAN_ENERGY_TOLERANCE
               and r["max_energy_removed"] <= MAX_ENERGY_TOLERANCE and r["n_below_min_duration"] == 0]
    assert rec["top_db"] == min(passing)
    assert rec["duration"] == round_up(sweep[rec["top_db"]]["trimmed_p95_s"])
    assert rec["duration"] % 0.25 == 0 and set(rec) >= {"top_db", "duration", "rule"}

    report = (out / "report.md").read_text()
    assert "## Recommendation" in report and f"top_db = {rec['top_db']:g}" in report
    assert str(broken) in report
    for fname in PLOT_FILES.values():
        assert f"({fname})" in report


def test_analyze_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no records"):
        analyze([], tmp_path)
    rec = Utterance(path=str(tmp_path / "a.wav"), corpus="x", speaker="1", emotion="sad")
    with pytest.raises(ConfigError, match="thresholds"):
        analyze([rec], tmp_path, thresholds=(30, 0))


def test_analyze_fails_when_no_clip_is_readable(tmp_path: Path) -> None:
    rec = Utterance(path=str(tmp_path / "missing.wav"), corpus="x", speaker="1", emotion="sad")
    with pytest.raises(AudioError, match="missing.wav"):
        analyze([rec], tmp_path / "out", jobs=1, progress=False)


# -------------------------------------------------------------------------------------------- plots


def test_plot_confusion(tmp_path: Path) -> None:
    before = plt.get_fignums()
    m = np.array([[8, 2, 0], [1, 1, 0], [0, 0, 0]])
    for normalize in (True, False):
        path = plots.plot_confusion(m, ["a", "b", "c"], tmp_path / f"cm_{normalize}.png", title="t",
                                    normalize=normalize)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plt.get_fignums() == before  # no pyplot figure left behind
    with pytest.raises(ConfigError, match="labels"):
        plots.plot_confusion(m, ["a", "b"], tmp_path / "bad.png")


def test_plot_spectrograms_and_boxplots_write_png(tmp_path: Path, rng: np.random.Generator) -> None:
    specs = [("calm", -80 * rng.random((64, 40))), ("sad", -80 * rng.random((64, 90)))]
    assert plots.plot_spectrograms(specs, tmp_path / "s.png", sr=SR, hop_length=512).is_file()
    panels = {"Peak (dBFS)": {"a": [-3.0, -6.0, float("-inf")], "b": [-10.0]}}
    assert plots.plot_boxplots(panels, tmp_path / "b.png").is_file()
    with pytest.raises(ConfigError):
        plots.plot_spectrograms([], tmp_path / "none.png", sr=SR, hop_length=512)


# --------------------------------------------------------------------------------------------- data


@pytest.mark.data
def test_analyze_real_ravdess_subset(real_ravdess: Path, tmp_path: Path) -> None:
    records = [r for r in load_ravdess(real_ravdess) if r.speaker in ("01", "02")]
    summary = analyze(records, tmp_path, progress=False)
    assert summary["n_analysed"] == 120 and not summary["failures"]
    assert summary["sample_rates"] == {"48000": 120}
    assert summary["channels"] == {"1": 118, "2": 2}  # Actor_01 has two stereo clips
    dur = summary["overall"]["all"]["duration_s"]
    assert 2.9 <= dur["min"] and dur["max"] <= 5.3
    levels = summary["overall"]["all"]
    assert -60 < levels["rms_dbfs"]["mean"] < levels["peak_dbfs"]["mean"] <= 0
    assert -70 < levels["lufs"]["mean"] < 0
    removed = [r["mean_removed_s"] for r in summary["sweep"]]
    energy = [r["mean_energy_removed"] for r in summary["sweep"]]
    assert removed == sorted(removed, reverse=True) and energy == sorted(energy, reverse=True)
    rec = summary["recommended"]
    assert rec["top_db"] in summary["thresholds"]
    assert 1.0 <= rec["duration"] <= 5.5
    AudioConfig(top_db=rec["top_db"], duration=rec["duration"])  # usable as a config
