"""The package's floors, checked: imports only go down (import-linter's layers contract from pyproject.toml), no
import cycles, small modules, and a command line that starts without the heavy libraries."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import grimp
import numpy as np
import pytest

from conftest import voiced

SRC = Path(__file__).resolve().parents[1] / "src"
PYPROJECT = SRC.parent / "pyproject.toml"
#: the longest module we accept (lines); a module that outgrows it should be split by responsibility
MAX_LINES = 450


def _lint_imports(src: Path, config: Path) -> subprocess.CompletedProcess[str]:
    lint = shutil.which("lint-imports")
    assert lint, "import-linter is part of the dev extra: pip install -e '.[dev]'"
    return subprocess.run([lint, "--config", str(config), "--no-cache"], capture_output=True, text=True,
                          cwd=src, env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"}, timeout=120)


def test_layers_contract_is_kept() -> None:
    proc = _lint_imports(SRC, PYPROJECT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 kept, 0 broken" in proc.stdout


def test_layers_contract_fails_on_an_upward_import(tmp_path: Path) -> None:
    """The contract is not vacuous: one upward import (core -> apps) in a copy of the package breaks it."""
    shutil.copytree(SRC / "voxemo", tmp_path / "voxemo", ignore=shutil.ignore_patterns("models", "*.pyc", "web"))
    errors = tmp_path / "voxemo" / "core" / "errors.py"
    upward = "\n\ndef _upward() -> None:\n    from voxemo.apps import cli  # noqa: F401\n"
    errors.write_text(errors.read_text() + upward)
    proc = _lint_imports(tmp_path, PYPROJECT)
    assert proc.returncode != 0
    assert "BROKEN" in proc.stdout and "voxemo.core.errors -> voxemo.apps.cli" in proc.stdout


def _import_graph() -> dict[str, set[str]]:
    graph = grimp.build_graph("voxemo", cache_dir=None)
    return {m: {i for i in graph.find_modules_directly_imported_by(m) if i.startswith("voxemo")}
            for m in graph.modules if m.startswith("voxemo")}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        component.append(m)
                        if m == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_no_import_cycles() -> None:
    """Every import counts, including those inside functions: a deferred import defers a heavy package, it never
    hides a cycle."""
    assert _cycles(_import_graph()) == []


def test_cycle_finder_finds_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_modules_stay_small() -> None:
    long = {str(p.relative_to(SRC)): n for p in (SRC / "voxemo").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}, f"split these by responsibility: {long}"


@pytest.mark.parametrize("argv", [["--help"], ["predict", "--help"]])
def test_cli_starts_without_heavy_libraries(argv: list[str]) -> None:
    """``voxemo --help`` and the predict path import neither torch, scikit-learn, pandas nor matplotlib."""
    code = ("import sys\nfrom voxemo.apps.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "heavy = sorted(m for m in ('torch', 'sklearn', 'pandas', 'matplotlib', 'fastapi', 'librosa', 'numba')"
            " if m in sys.modules)\nprint('HEAVY', heavy)")
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout, proc.stdout[-500:]


def test_prediction_imports_no_heavy_library(make_wav: Callable[..., Path], rng: np.random.Generator) -> None:
    """A one-clip prediction with the shipped model (ONNX Runtime) imports no torch, scikit-learn, pandas, nor
    librosa (whose filters module alone pulls scipy.signal and numba: half a second of start-up)."""
    tiny_wav = make_wav("clip.wav", voiced(2.0, 16000, rng), 16000)
    code = ("import sys\nfrom voxemo.apps.cli import main\nrc = main(['-q', 'predict', sys.argv[1]])\n"
            "heavy = sorted(m for m in ('torch', 'sklearn', 'pandas', 'matplotlib', 'librosa', 'scipy.signal', 'numba')"
            " if m in sys.modules)\n"
            "print('HEAVY', heavy, 'RC', rc)")
    proc = subprocess.run([sys.executable, "-c", code, str(tiny_wav)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY [] RC 0" in proc.stdout, proc.stdout[-500:] + proc.stderr[-500:]


def test_static_types_check() -> None:
    """mypy over src/voxemo at the strictness configured in pyproject.toml ([tool.mypy])."""
    mypy = shutil.which("mypy")
    assert mypy, "mypy is part of the dev extra: pip install -e '.[dev]'"
    proc = subprocess.run([mypy, "--no-incremental"], capture_output=True, text=True, cwd=SRC.parent, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1000:]


#: what the shipped models (and their shared encoders) may weigh in the package, in bytes: 28.8 MB on 2026-12-06 (six
#: models: two encoders stored once, four heads referring to them, two CNNs stored once as ONNX; issue house-2)
MODEL_DATA_BUDGET = 30_000_000


def test_model_data_stays_in_its_budget_and_no_file_is_shipped_twice() -> None:
    import hashlib

    import voxemo

    models = Path(voxemo.__file__).parent / "models"
    files = [p for p in models.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    total = sum(p.stat().st_size for p in files)
    assert total <= MODEL_DATA_BUDGET, f"the shipped models weigh {total / 1e6:.1f} MB, over the budget"
    digests: dict[str, Path] = {}
    for p in files:
        if p.stat().st_size >= 100_000:
            digest = hashlib.sha256(p.read_bytes()).hexdigest()
            assert digest not in digests, f"{p} is a copy of {digests[digest]}: share one file (an encoder reference)"
            digests[digest] = p
    # each network once: an encoder lives in models/encoders only, a CNN as its model.onnx only
    networks = [p for p in files if p.suffix in (".onnx", ".pt")]
    assert all(p.suffix == ".onnx" for p in networks), [p.name for p in networks if p.suffix == ".pt"]
    assert all((p.parent.name == "encoders") != (p.name == "model.onnx") for p in networks)
