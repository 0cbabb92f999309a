"""In-function imports only where they have a reason: the module imported brings an optional extra (torch,
matplotlib, scikit-learn, ...), directly or through the modules it imports (cycles are refused anyway:
``tests/test_architecture.py``). The command line (``voxemo.apps``) imports what each command runs when it runs,
so that ``voxemo --help`` and ``voxemo predict`` start fast (``benchmarks/bench_startup.py``). Everything else is
imported at the top."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: the extras' packages (pyproject.toml's optional dependencies and what they bring); the base install is numpy,
#: scipy, soundfile, soxr, onnxruntime (imported only where a model runs), webrtcvad, threadpoolctl and tqdm
OPTIONAL = {"torch", "sklearn", "librosa", "matplotlib", "onnx", "onnxscript", "fastapi", "uvicorn", "starlette",
            "ray", "pyarrow", "opensmile", "audiomentations", "pyloudnorm", "sounddevice", "websockets",
            "multipart", "python_multipart", "resemblyzer"}
#: base packages imported only where they are used, to keep ``import voxemo`` and the command line fast
DEFERRED = {"onnxruntime", "scipy", "tqdm", "numpy"}


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")


def imported(node: ast.Import | ast.ImportFrom, package: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    if node.level:  # relative
        base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
    return [base]


@cache
def top_level_imports(module: str) -> frozenset[str]:
    """What ``module`` imports at module level (not under ``if TYPE_CHECKING``)."""
    path = SRC / (module.replace(".", "/") + ".py")
    if not path.is_file():
        path = SRC / module.replace(".", "/") / "__init__.py"
    if not path.is_file():
        return frozenset()
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.update(imported(node, module))
    return frozenset(out)


def reaches(module: str, seen: set[str] | None = None) -> set[str]:
    """Every module ``module`` imports at module level, transitively (voxemo's own followed)."""
    seen = set() if seen is None else seen
    for name in top_level_imports(module):
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        if parts[0] == "voxemo":
            for i in range(2, len(parts) + 1):  # a package's __init__ runs first
                seen.add(".".join(parts[:i]))
                reaches(".".join(parts[:i]), seen)
    return seen


def in_function_imports() -> list[tuple[str, int, str]]:
    out = []
    for path in sorted((SRC / "voxemo").rglob("*.py")):
        module = module_name(path)
        for fn in ast.walk(ast.parse(path.read_text())):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(fn):
                    if isinstance(node, (ast.Import, ast.ImportFrom)):
                        out += [(module, node.lineno, name) for name in imported(node, module)]
    return sorted(set(out))


def reason(importer: str, name: str) -> str | None:
    top = name.split(".")[0]
    if importer.startswith("voxemo.apps."):
        return "the command line imports what a command runs"
    if top in OPTIONAL:
        return "an optional extra"
    if top in DEFERRED:
        return "a base package only some calls need"
    if top == "voxemo":
        tops = {m.split(".")[0] for m in reaches(name)} | {name.split(".")[0]}
        if tops & OPTIONAL:
            return f"brings {', '.join(sorted(tops & OPTIONAL))}"
    return None


def test_every_in_function_import_has_a_reason() -> None:
    found = in_function_imports()
    assert len(found) > 20  # the scan sees them (the command line alone has dozens)
    unexplained = [f"{importer}:{line} imports {name}" for importer, line, name in found
                   if reason(importer, name) is None]
    assert not unexplained, "import these at module level:\n" + "\n".join(unexplained)


@pytest.mark.parametrize("importer, name, expected", [
    ("voxemo.inference.torch_backend", "voxemo.nn.train", "brings torch"),
    ("voxemo.reports.evaluation", "voxemo.reports.plots", "brings matplotlib"),
    ("voxemo.inference.batch", "json", None),
    ("voxemo.inference.batch", "voxemo.io.files", None),
])
def test_the_reasons_are_read_from_the_import_graph(importer: str, name: str, expected: str | None) -> None:
    got = reason(importer, name)
    assert (got is None) if expected is None else (got is not None and got.startswith(expected))
