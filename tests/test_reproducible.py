"""The same command, seed and data give the same numbers: whatever the number of worker processes, a cold or a
warm feature cache, and (through pinned SIMD kernels) whichever x86-64 CPU runs it."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from voxemo.apps.cli import main
from voxemo.core.reproducible import PINS

ACTORS = (1, 2, 3, 4, 5, 6)
X86 = platform.machine().lower() in ("x86_64", "amd64")


def _state(model: Path) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in torch.load(model / "weights.pt", weights_only=True).items()}


def _without_timings(report: dict) -> dict:
    variants = report["variants"]["variants"]
    for v in variants.values():
        for row in v["history"]:
            row.pop("seconds", None)
    return report


def test_training_is_identical_across_job_counts_and_cache_states(
        fake_ravdess: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``voxemo train`` with one extraction and training process on a cold cache, then with two processes on the
    warm cache: the same variant, epochs and validation history, and bit-identical weights."""
    corpus = fake_ravdess(ACTORS, seconds=0.5)
    monkeypatch.setenv("VOXEMO_CACHE", str(tmp_path / "cache"))
    args = ["-q", "--seed", "2", "train", str(corpus), "--epochs", "3", "--set", "model.channels=[4,8]"]
    assert main([*args, "--jobs", "1", "--out", str(tmp_path / "cold")]) == 0
    assert any((tmp_path / "cache").rglob("*.npy"))  # the second run reads these
    assert main([*args, "--jobs", "2", "--out", str(tmp_path / "warm")]) == 0

    cold, warm = (json.loads((tmp_path / d / "training.json").read_text()) for d in ("cold", "warm"))
    assert _without_timings(cold) == _without_timings(warm)
    a, b = _state(tmp_path / "cold"), _state(tmp_path / "warm")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_thread_count_changes_the_numbers_so_it_is_pinned_to_one() -> None:
    """Why training keeps one torch thread by default: with two, the same run ends with other weights."""
    from voxemo.core.config import Config, ModelConfig, TrainConfig
    from voxemo.nn.train import train_model

    rng = np.random.default_rng(0)
    specs = [rng.standard_normal((64, 100 + i % 40)).astype(np.float32) for i in range(64)]
    y = np.arange(64) % 8
    cfg = Config(model=ModelConfig(channels=(8, 16)), train=TrainConfig(epochs=2, batch_size=16))
    previous = torch.get_num_threads()
    try:
        runs = [train_model(specs, y, 8, cfg, threads=t, progress=False).model.state_dict() for t in (1, 1, 2)]
    finally:
        torch.set_num_threads(previous)
    same = lambda s, t: all(torch.equal(s[k], t[k]) for k in s)  # noqa: E731
    assert same(runs[0], runs[1])
    if (os.cpu_count() or 1) > 1:
        assert not same(runs[0], runs[2])


@pytest.mark.skipif(not X86, reason="the pins are for x86-64 CPUs")
def test_the_command_line_pins_numpy_and_torch_kernels() -> None:
    """A fresh ``voxemo`` process sets the pins before numpy loads, so numpy dispatches no AVX-512 kernel; a
    value the user set is kept."""
    code = ("import os, sys\nfrom voxemo.apps.cli import main\nmain(['--version'])\n")
    env = {k: v for k, v in os.environ.items() if k not in PINS}
    env["MKL_CBWR"] = "COMPATIBLE"
    probe = ("import os\nfrom voxemo.core.reproducible import pin_cpu_kernels\nprint(pin_cpu_kernels())\n"
             "import numpy\nfrom numpy._core._multiarray_umath import __cpu_features__ as f\n"
             "print('X86_V4', f.get('X86_V4', False), f.get('AVX512_ICL', False), os.environ['MKL_CBWR'],"
             " os.environ['ATEN_CPU_CAPABILITY'])\n")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "X86_V4 False False COMPATIBLE avx2" in proc.stdout, proc.stdout
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("voxemo "), proc.stderr


def test_pins_are_not_set_once_numpy_is_loaded() -> None:
    """Setting them then would change nothing for numpy, so nothing is set (this test process loaded numpy)."""
    from voxemo.core.reproducible import pin_cpu_kernels

    assert pin_cpu_kernels() == {}
