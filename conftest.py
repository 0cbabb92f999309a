"""Repository-wide pytest set-up: ``--base-install`` runs the tests a base install can run.

A base install (``pip install -e ".[test]"``: numpy, scipy, soundfile, soxr, onnxruntime, no torch, no other extra)
predicts, adapts encoder-family models and runs the CLI's prediction commands. With ``--base-install`` a test module
or doctest module that imports an extra's package (torch, scikit-learn, matplotlib, FastAPI, ...) is skipped, naming
the package, instead of failing to collect; without it (the full suite, CI) a missing package is an error as ever.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest

SRC = Path(__file__).resolve().parent / "src"

#: the message of an import of a package that is not installed
_MISSING = re.compile(r"No module named '([A-Za-z0-9_.]+)'")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--base-install", action="store_true",
                     help="skip test modules that need a package of an extra (the fast suite of a base install)")


def _missing_extra(message: str) -> str | None:
    """The third-party package an import error names, if any."""
    found = _MISSING.search(message)
    return found.group(1) if found and found.group(1).split(".")[0] not in ("voxemo", "conftest") else None


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With ``--base-install``, leave out the doctests of a voxemo module that imports an extra's package (imported
    here the normal way, so a failed import leaves nothing half-initialised behind for the next module)."""
    if not config.getoption("--base-install") or collection_path.suffix != ".py" \
            or SRC not in collection_path.resolve().parents:
        return None
    dotted = ".".join(collection_path.resolve().relative_to(SRC).with_suffix("").parts)
    if dotted.endswith("__main__"):  # runs the command when imported
        return None
    try:
        importlib.import_module(dotted.removesuffix(".__init__"))
    except ModuleNotFoundError as exc:
        return True if _missing_extra(str(exc)) else None
    return None


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    report = yield
    if report.failed and isinstance(collector, pytest.Module) and collector.config.getoption("--base-install"):
        missing = _missing_extra(str(report.longrepr))
        if missing:
            report.outcome = "skipped"
            report.longrepr = (str(collector.path), 0, f"Skipped: needs {missing} (an extra; not in a base install)")
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """With ``--base-install``, a test (or its fixture, or a doctest) that imports an extra's package is skipped,
    naming it."""
    report = yield
    if report.failed and item.config.getoption("--base-install"):
        # an exception from the test or a fixture, or one a doctest shows
        missing = _missing_extra(str(call.excinfo.value) if call.excinfo is not None else "") \
            or _missing_extra(str(report.longrepr))
        if missing:
            report.outcome = "skipped"
            report.longrepr = (str(item.path), item.location[1] or 0,
                               f"Skipped: needs {missing} (an extra; not in a base install)")
    return report
