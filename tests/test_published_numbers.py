"""The numbers README publishes for the main job are the numbers the main job gives.

CI runs the README's set-up command, whose ``voxemo run --out runs/study`` writes ``runs/study/summary.json``,
then ``python -m pytest``: this test then compares that run's one-line result (accuracy ± std, UAR, the chosen
variant, its epochs and the temperature) with the line README states, so the two can never drift apart again.
Without a main job in ``runs/study`` (a developer's checkout) it is skipped.
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


def stated_headlines(readme: str) -> list[str]:
    return STATED.findall(readme)


def test_readme_states_the_main_job_once() -> None:
    assert len(stated_headlines((ROOT / "README.md").read_text(encoding="utf-8"))) == 1


@pytest.mark.skipif(not SUMMARY.is_file(), reason="no main job in runs/study (CI runs it before the tests)")
def test_readme_states_what_the_main_job_gives() -> None:
    summary = json.loads(SUMMARY.read_text())
    if summary["config"]["train"]["seed"] != 0 or summary["config"]["train"]["epochs"] != 60:
        pytest.skip("runs/study is not the default main job (seed 0, 60 epochs)")
    gives = headline(summary)
    (stated,) = stated_headlines((ROOT / "README.md").read_text(encoding="utf-8"))
    assert stated == gives, f"README.md states '{stated}', but `voxemo run --out runs/study` gives '{gives}'"


def test_the_check_catches_a_drift() -> None:
    summary = {"evaluation": {"actor-6fold": {"summary": {"accuracy": {"mean": 0.669, "std": 0.074},
                                                          "uar": {"mean": 0.66}}}},
               "chosen_variant": "no_bias_init", "final_epochs": 51, "calibration": {"temperature": 0.83}}
    readme = "$ voxemo run\nactor-6fold accuracy 0.688 ± 0.063, UAR 0.681; chose bias_init, 46 epochs, T = 0.80; x\n"
    assert stated_headlines(readme) != [headline(summary)]
    assert stated_headlines(readme) == ["actor-6fold accuracy 0.688 ± 0.063, UAR 0.681; chose bias_init, 46 epochs, "
                                        "T = 0.80"]
