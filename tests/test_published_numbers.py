"""The numbers README publishes for the main job are the numbers the main job gives.

CI runs the README's set-up command, whose ``voxemo run --out runs/study`` writes ``runs/study/summary.json``,
then ``python -m pytest``: this test then compares that run's one-line result (accuracy ± std, UAR, the chosen
variant, its epochs and the temperature) with the line README states, so the two can never drift apart again.
Without a main job in ``runs/study`` (a developer's checkout) it is skipped.

The comparison allows what another host moves (most likely numpy's OpenBLAS, which picks its kernels by the CPU and
which :mod:`voxemo.core.reproducible` does not pin): a CI host on 2026-12-05 printed 0.668 ± 0.056, UAR 0.658, 49
epochs where this project's machine prints README's 0.673 ± 0.065, UAR 0.663, 46 epochs. The chosen variant must be
the same, accuracy and UAR within 0.01, the spread within 0.015, the epochs within 5 and T within 0.05; anything
more is a stale README.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from voxemo.reports.study import headline

ROOT = Path(__file__).resolve().parents[1]
SUMMARY = ROOT / "runs" / "study" / "summary.json"
#: the main job's line as README states it
STATED = re.compile(r"actor-6fold accuracy [0-9.]+ ± [0-9.]+, UAR [0-9.]+; chose \w+, \d+ epochs, T = [0-9.]+")
PARTS = re.compile(r"accuracy ([0-9.]+) ± ([0-9.]+), UAR ([0-9.]+); chose (\w+), (\d+) epochs, T = ([0-9.]+)")
#: accuracy, spread, UAR, variant, epochs, T: how far another host may move each (None: must be equal)
TOLERANCE = (0.01, 0.015, 0.01, None, 5, 0.05)


def stated_headlines(readme: str) -> list[str]:
    return STATED.findall(readme)


def same_within_host_noise(stated: str, gives: str) -> bool:
    """Whether two main-job lines agree within :data:`TOLERANCE`."""
    a, b = PARTS.search(stated), PARTS.search(gives)
    if a is None or b is None:
        return False
    for x, y, tol in zip(a.groups(), b.groups(), TOLERANCE, strict=True):
        if tol is None:
            if x != y:
                return False
        elif abs(float(x) - float(y)) > tol:
            return False
    return True


def test_readme_states_the_main_job_once() -> None:
    assert len(stated_headlines((ROOT / "README.md").read_text(encoding="utf-8"))) == 1


@pytest.mark.skipif(not SUMMARY.is_file(), reason="no main job in runs/study (CI runs it before the tests)")
def test_readme_states_what_the_main_job_gives() -> None:
    summary = json.loads(SUMMARY.read_text())
    if summary["config"]["train"]["seed"] != 0 or summary["config"]["train"]["epochs"] != 60:
        pytest.skip("runs/study is not the default main job (seed 0, 60 epochs)")
    gives = headline(summary)
    (stated,) = stated_headlines((ROOT / "README.md").read_text(encoding="utf-8"))
    assert same_within_host_noise(stated, gives), \
        f"README.md states '{stated}', but `voxemo run --out runs/study` gives '{gives}'"


def test_the_check_catches_a_drift() -> None:
    summary = {"evaluation": {"actor-6fold": {"summary": {"accuracy": {"mean": 0.669, "std": 0.074},
                                                          "uar": {"mean": 0.66}}}},
               "chosen_variant": "no_bias_init", "final_epochs": 51, "calibration": {"temperature": 0.83}}
    readme = "$ voxemo run\nactor-6fold accuracy 0.688 ± 0.063, UAR 0.681; chose bias_init, 46 epochs, T = 0.80; x\n"
    assert stated_headlines(readme) != [headline(summary)]
    assert not same_within_host_noise(stated_headlines(readme)[0], headline(summary))
    assert stated_headlines(readme) == ["actor-6fold accuracy 0.688 ± 0.063, UAR 0.681; chose bias_init, 46 epochs, "
                                        "T = 0.80"]


def test_host_noise_is_allowed_and_no_more() -> None:
    readme = "actor-6fold accuracy 0.673 ± 0.065, UAR 0.663; chose no_bias_init, 46 epochs, T = 0.80"
    assert same_within_host_noise(readme, "actor-6fold accuracy 0.668 ± 0.056, UAR 0.658; chose no_bias_init, "
                                          "49 epochs, T = 0.80")
    assert not same_within_host_noise(readme, "actor-6fold accuracy 0.668 ± 0.056, UAR 0.658; chose bias_init, "
                                              "49 epochs, T = 0.80")
    assert not same_within_host_noise(readme, "actor-6fold accuracy 0.650 ± 0.065, UAR 0.663; chose no_bias_init, "
                                              "46 epochs, T = 0.80")
