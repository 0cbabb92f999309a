"""Start-up benchmark of the ``voxemo`` command, run by ``bench.py`` (section 7; ``--startup-only`` runs just this).

7. Fresh processes, as a user starts them: ``voxemo --help``, ``voxemo predict CLIP`` with the shipped model and
   ``python -c "import voxemo"``, ``--startup-runs`` times each, interleaved (one run of every command, then the
   next round), after one untimed warm-up run of each (so the OS file cache holds the Python files, the shared
   libraries and the model, as on a machine where voxemo has run before). Per command: median and min wall time,
   the median CPU time (user + system, less sensitive to other processes on a shared machine than wall time),
   and the process's peak RSS.

   Each measured command is started by a tiny wrapper (``python -I -S``, about 10 MB) that takes the time,
   ``posix_spawn``s the command, ``wait4``s for it and writes the child's wall time, CPU time (user + system) and
   ``ru_maxrss``. Wall time thus runs from the spawn to the child's exit: the interpreter's start, every import,
   loading the model and the prediction, without the wrapper's own start. ``ru_maxrss`` is the number that
   ``getrusage(RUSAGE_CHILDREN)`` or GNU ``/usr/bin/time -f %M`` give, for exactly this one process. Why the
   wrapper: on Linux a child's ``ru_maxrss`` starts at the RSS of the process that forked it (the forked or
   vfork-shared memory is counted until ``exec``), so a child spawned by this benchmark (over 200 MB with torch
   and numpy imported) would report at least that much whatever it did; spawned by the wrapper, the floor is
   the wrapper's ~10 MB, below any Python process that imports voxemo (reported as ``floor_mb``). And
   ``RUSAGE_CHILDREN`` of one long-lived parent is the maximum over all its children so far, so it could not
   tell the runs apart either. The ``voxemo`` command is the console script next to ``sys.executable`` (what
   ``pip install`` writes into the environment), so no pyenv or similar shim is timed.

   In a separate, untimed run per command, a ``-c`` wrapper calls ``voxemo.apps.cli.main`` with the same
   arguments (or does ``import voxemo``) and then writes which modules the process holds: the heavy ones that a
   prediction must not need (torch, sklearn, pandas, librosa, matplotlib) and the top-level third-party packages.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

#: Targets from the start-up issue: `voxemo predict clip.wav`, whole process, shipped model.
TARGET_STARTUP_S = 1.0
TARGET_STARTUP_PEAK_MB = 250.0
#: Modules a prediction must not import (each costs hundreds of ms and tens to hundreds of MB).
HEAVY_MODULES = ("torch", "sklearn", "pandas", "librosa", "matplotlib")
#: The clip the issue's example uses: an angry RAVDESS clip (emotion code 05).
DEFAULT_CLIP = "Actor_24/03-01-05-02-01-01-24.flac"

# argv[1]: file to write the measurement to; argv[2:]: the command (absolute path first). Kept tiny: its RSS at the
# spawn is the floor of the child's ru_maxrss.
_WRAPPER = """
import os, resource, sys, time
try:  # the high-water RSS of this process's own memory; getrusage(SELF) would include the forking parent's
    floor = next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM:")) / 1024
except (OSError, StopIteration):
    floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0 = time.perf_counter()
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - t0
with open(sys.argv[1], "w") as f:
    f.write("%r" % ({"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "peak_mb": ru.ru_maxrss / 1024,
                     "floor_mb": floor},))
sys.exit(os.waitstatus_to_exitcode(status) & 255)
"""

# argv[1]: file to write the module report to; argv[2]: "import" or "cli"; argv[3]: the heavy modules, comma-separated;
# argv[4:]: the CLI's arguments.
_PROBE = """
import json, sys
out, mode, heavy, args = sys.argv[1], sys.argv[2], sys.argv[3].split(","), sys.argv[4:]
rc = 0
try:
    if mode == "import":
        import voxemo
    else:
        from voxemo.apps.cli import main
        rc = main(args)
except SystemExit as exc:
    rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
finally:
    names = sorted(sys.modules)
    tops = sorted({n.split(".")[0] for n in names} - set(sys.stdlib_module_names) - {"voxemo"})
    with open(out, "w") as f:
        json.dump({"modules": len(names), "third_party": [t for t in tops if not t.startswith("_")],
                   "heavy": [m for m in heavy if m in sys.modules]}, f)
sys.exit(rc)
"""


def voxemo_command() -> list[str]:
    """The ``voxemo`` console script of this interpreter's environment, else the one on PATH, else ``-m``."""
    here = Path(sys.executable).parent / "voxemo"
    if here.is_file() and os.access(here, os.X_OK):
        return [str(here)]
    found = shutil.which("voxemo")
    return [found] if found else [sys.executable, "-m", "voxemo"]


def pick_startup_clip(paths: Sequence[str]) -> str:
    """The issue's example clip if the corpus has it, else the first clip."""
    for p in sorted(paths):
        if Path(p).as_posix().endswith(DEFAULT_CLIP):
            return p
    return sorted(paths)[0]


def run_measured(cmd: Sequence[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``cmd`` once under the wrapper; its wall s, CPU s and peak RSS (MB, ``ru_maxrss`` from ``wait4``)."""
    import ast

    cmd = [shutil.which(cmd[0]) or cmd[0], *cmd[1:]]  # posix_spawn does not search PATH
    with tempfile.TemporaryDirectory(prefix="voxemo-bench-run-") as tmp:
        report = Path(tmp) / "usage"
        proc = subprocess.run([sys.executable, "-I", "-S", "-c", _WRAPPER, str(report), *cmd], capture_output=True,
                              stdin=subprocess.DEVNULL, env=env)
        if not report.is_file():
            raise SystemExit(f"bench: the start-up wrapper failed for {' '.join(cmd)}: "
                             f"{proc.stderr.decode(errors='replace').strip()[-500:]}")
        usage = ast.literal_eval(report.read_text())
    return {**usage, "rc": proc.returncode, "stdout": proc.stdout.decode(errors="replace"),
            "stderr": proc.stderr.decode(errors="replace")}


def probe_modules(mode: str, args: Sequence[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="voxemo-bench-probe-") as tmp:
        report = Path(tmp) / "modules.json"
        proc = subprocess.run([sys.executable, "-c", _PROBE, str(report), mode, ",".join(HEAVY_MODULES), *args],
                              capture_output=True, text=True, stdin=subprocess.DEVNULL, env=env)
        if not report.is_file():
            return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
        return json.loads(report.read_text())


def bench_startup(paths: Sequence[str], runs: int, log: Callable[[str], None]) -> dict[str, Any]:
    clip = pick_startup_clip(paths)
    exe = voxemo_command()
    # a clean environment for the children: no VOXEMO_* overrides of the model, same PATH and HOME
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXEMO_")}
    commands: dict[str, dict[str, Any]] = {
        "help": {"label": "`voxemo --help`", "cmd": [*exe, "--help"], "probe": ("cli", ["--help"])},
        "predict": {"label": "`voxemo predict CLIP` (shipped model)", "cmd": [*exe, "predict", clip],
                    "probe": ("cli", ["predict", clip])},
        "import": {"label": '`python -c "import voxemo"`', "cmd": [sys.executable, "-c", "import voxemo"],
                   "probe": ("import", [])},
    }
    load_start = os.getloadavg()
    for c in commands.values():  # warm-up: OS file cache; also checks that every command works
        r = run_measured(c["cmd"], env)
        if r["rc"]:
            raise SystemExit(f"bench: {' '.join(c['cmd'])} exited with {r['rc']}: "
                             f"{(r['stderr'].strip().splitlines() or [''])[-1]}")
        c["output"] = r["stdout"].strip()
    samples: dict[str, list[dict[str, Any]]] = {k: [] for k in commands}
    for i in range(runs):
        for key, c in commands.items():
            r = run_measured(c["cmd"], env)
            if r["rc"]:
                raise SystemExit(f"bench: {' '.join(c['cmd'])} exited with {r['rc']} on run {i + 1}")
            samples[key].append({k: r[k] for k in ("wall_s", "cpu_s", "peak_mb", "floor_mb")})
        log(f"start-up run {i + 1}/{runs}: " + ", ".join(
            f"{k} {s[-1]['wall_s']:.2f} s {s[-1]['peak_mb']:.0f} MB" for k, s in samples.items()))
    load_end = os.getloadavg()

    rows: dict[str, Any] = {}
    for key, c in commands.items():
        s = samples[key]
        rows[key] = {
            "label": c["label"], "command": c["cmd"],
            "median_wall_s": statistics.median(x["wall_s"] for x in s), "min_wall_s": min(x["wall_s"] for x in s),
            "median_cpu_s": statistics.median(x["cpu_s"] for x in s),
            "peak_mb": max(x["peak_mb"] for x in s), "median_peak_mb": statistics.median(x["peak_mb"] for x in s),
            "floor_mb": max(x["floor_mb"] for x in s),
            "runs": s, "modules": probe_modules(c["probe"][0], c["probe"][1], env=env),
        }
    # the prediction itself: "PATH<TAB>emotion<TAB>confidence"; RAVDESS' third field is the emotion code
    fields = commands["predict"]["output"].split("\t")
    predicted = fields[1] if len(fields) >= 3 else None
    ravdess = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry", "06": "fearful",
               "07": "disgust", "08": "surprised"}
    parts = Path(clip).stem.split("-")
    return {"clip": clip, "runs": runs, "voxemo_command": exe, "python": sys.executable,
            "load_avg_start": [round(x, 2) for x in load_start], "load_avg_end": [round(x, 2) for x in load_end],
            "cpu_count": os.cpu_count(), "rows": rows, "predict_output": commands["predict"]["output"],
            "predicted": predicted, "clip_label": ravdess.get(parts[2]) if len(parts) == 7 else None}


def startup_targets(st: dict[str, Any]) -> dict[str, float]:
    p = st["rows"]["predict"]
    return {"startup_predict_s": p["median_wall_s"], "startup_predict_peak_mb": p["peak_mb"]}


def met(ok: bool) -> str:
    """A target's verdict cell."""
    return "**met**" if ok else "**missed**"


def render_startup(st: dict[str, Any]) -> list[str]:
    la, lb = st["load_avg_start"], st["load_avg_end"]
    lines = [
        f"## 7. Start-up: fresh processes, {st['runs']} interleaved runs each",
        "",
        f"`{' '.join(st['voxemo_command'])}`; clip `{st['clip']}`: `{st['predict_output']}` "
        f"(corpus label: {st['clip_label'] or 'unknown'}). Load average (1, 5, 15 min) "
        f"{la[0]:.2f} {la[1]:.2f} {la[2]:.2f} before, {lb[0]:.2f} {lb[1]:.2f} {lb[2]:.2f} after, on "
        f"{st['cpu_count']} CPUs. Each run spawned by a tiny wrapper: wall from its `posix_spawn` to `wait4`; "
        "peak RSS = the child's `ru_maxrss` from `wait4`, the largest of the runs (floor: the wrapper's "
        f"{max(r['floor_mb'] for r in st['rows'].values()):.0f} MB); CPU = user + system, median.",
        "",
        f"| command | median wall s | min wall s | median CPU s | peak RSS MB | "
        f"wall < {TARGET_STARTUP_S:g} s | RSS < {TARGET_STARTUP_PEAK_MB:g} MB | heavy modules imported | "
        "third-party packages imported |",
        "|---|---:|---:|---:|---:|---|---|---|---|",
    ]
    for r in st["rows"].values():
        mods = r["modules"]
        heavy = ("probe failed: " + mods["error"]) if "error" in mods else (", ".join(mods["heavy"]) or "none")
        third = "" if "error" in mods else (", ".join(mods["third_party"]) or "none") + f" ({mods['modules']} modules)"
        lines.append(f"| {r['label']} | {r['median_wall_s']:.2f} | {r['min_wall_s']:.2f} | {r['median_cpu_s']:.2f} "
                     f"| {r['peak_mb']:.0f} | {met(r['median_wall_s'] < TARGET_STARTUP_S)} | "
                     f"{met(r['peak_mb'] < TARGET_STARTUP_PEAK_MB)} | {heavy} | {third} |")
    return [*lines, ""]


def startup_target_rows(t: dict[str, Any]) -> list[str]:
    if "startup_predict_s" not in t:
        return []
    return [f"| `voxemo predict CLIP` under {TARGET_STARTUP_S:g} s wall (median, whole process) | "
            f"{t['startup_predict_s']:.2f} s | {met(t['startup_predict_s'] < TARGET_STARTUP_S)} |",
            f"| `voxemo predict CLIP` under {TARGET_STARTUP_PEAK_MB:g} MB peak RSS (largest run) | "
            f"{t['startup_predict_peak_mb']:.0f} MB | {met(t['startup_predict_peak_mb'] < TARGET_STARTUP_PEAK_MB)} |"]
