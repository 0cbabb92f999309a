"""``--engine ray`` on a local Ray runtime (``ray.init(num_cpus=2)``, shared by the module): the same predictions
as the local engine, Parquet output, a worker killed mid-run, a driver killed mid-run and resumed, a file that kills
its worker, and the one-line message without the ``ray`` extra. The two-node cluster is ``test_ray_cluster.py``."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import voiced
from voxemo.apps.cli import main
from voxemo.core.errors import ConfigError
from voxemo.core.extras import MissingExtraError
from voxemo.inference import distributed, parquet
from voxemo.inference.batch import predict_batch
from voxemo.inference.results import FileFailure, FileResult
from voxemo.inference.worker import WorkerSettings
from voxemo.io.discovery import expand_inputs

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray

N_GOOD = 120
BAD = {"bad_text.wav": b"RIFF but not really a wav file", "bad_empty.wav": b""}


@pytest.fixture(scope="module")
def runtime() -> Iterator[object]:
    """One local Ray runtime for the module: starting one costs seconds."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Short voice-like WAVs (0.4 s at 8 kHz) and two corrupt files."""
    root = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(7)
    for i in range(N_GOOD):
        sf.write(str(root / f"clip{i:03d}.wav"), voiced(0.4, 8000, rng, f0=100 + (i % 8) * 25), 8000,
                 subtype="PCM_16")
    for name, data in BAD.items():
        (root / name).write_bytes(data)
    return root


@pytest.fixture(scope="module")
def reference(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The local engine's output of ``folder`` in each format (one process: the same results as any --jobs)."""
    out = tmp_path_factory.mktemp("reference")
    files = {fmt: out / f"local.{fmt}" for fmt in ("jsonl", "csv")}
    for fmt, path in files.items():
        predict_batch([folder], fmt="csv" if fmt == "csv" else "json", output=path, jobs=1)
    return files


def _actor_pids() -> list[int]:
    """Process ids of the running batch actors (Ray titles an actor's process ``ray::BatchActor``)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().startswith(b"ray::BatchActor"):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_ray_writes_what_the_local_engine_writes(fmt: str, runtime: object, folder: Path,
                                                 reference: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / f"ray.{fmt}"
    summary = predict_batch([folder], fmt="csv" if fmt == "csv" else "json", output=out, jobs=2, engine="ray")
    assert summary.predicted == N_GOOD + len(BAD) and summary.failed == len(BAD)
    assert out.read_bytes() == reference[fmt].read_bytes()  # same rows, same order, same printed digits


def test_parquet_round_trip_and_resume_after_a_lost_part(runtime: object, folder: Path, reference: dict[str, Path],
                                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow.parquet as pq

    monkeypatch.setattr(parquet, "PART_ROWS", 16)
    out = tmp_path / "results.parquet"
    monkeypatch.setattr(distributed, "CHUNK", 4)  # the driver reads 16 inputs ahead: 54 are written at the stop
    stop_after = 70

    def inputs() -> Iterator[str]:  # the driver stops at the 70th input
        for n, (path, _) in enumerate(expand_inputs([folder])):
            if n == stop_after:
                raise KeyboardInterrupt
            yield path

    with pytest.raises(KeyboardInterrupt):
        predict_batch(inputs(), output=out, jobs=2, engine="ray")
    parts = sorted(out.glob("part-*.parquet"))
    assert len(parts) >= 3
    parts[-1].unlink()  # as if the driver had been killed before the last part was renamed into place
    (out / ".part-000009.parquet.123.tmp").write_bytes(b"half a part")  # and had left its temporary file
    summary = predict_batch([folder], output=out, jobs=2, engine="ray", resume=True)
    assert summary.skipped == 16 * (len(parts) - 1)

    table = pq.read_table(out)
    expected = [json.loads(line) for line in reference["jsonl"].read_text().splitlines()]
    assert table.column("path").to_pylist() == [r["path"] for r in expected]  # each input once, in order
    rows = table.to_pylist()
    for row, want in zip(rows, expected):
        if "error" in want:
            assert row["error"] == want["error"] and row["emotion"] is None
        elif want["speech"]:
            assert (row["emotion"], row["confidence"], row["speech"]) == (want["emotion"], want["confidence"], True)
            assert {c: row[c] for c in want["probabilities"]} == want["probabilities"]
        else:
            assert (row["speech"], row["reason"]) == (False, want["reason"])
    with pytest.raises(ConfigError, match="not a voxemo Parquet results folder"):
        (out / "notes.txt").write_text("mine")
        predict_batch([folder], output=out, engine="ray", resume=True)


def test_a_worker_killed_mid_run_loses_nothing_and_repeats_nothing(runtime: object, folder: Path,
                                                                   reference: dict[str, Path]) -> None:
    from voxemo.inference.distributed import ray_stream

    items = list(expand_inputs([folder])) * 3
    results: list[FileResult] = []
    killed = None
    for result in ray_stream(iter(items), WorkerSettings(), jobs=2, chunk=4):
        results.append(result)
        if len(results) == 20:
            pids = _actor_pids()
            assert pids, "no actor process found"
            killed = pids[0]
            os.kill(killed, signal.SIGKILL)
    assert killed is not None
    assert [r.path for r in results] == [p for p, _ in items]
    expected = [json.loads(line) for line in reference["jsonl"].read_text().splitlines()] * 3
    assert [r.to_dict() for r in results] == expected


def test_a_killed_driver_resumes_without_loss_or_repeats(runtime: object, folder: Path, reference: dict[str, Path],
                                                         tmp_path: Path) -> None:
    """SIGKILL ``voxemo predict --engine ray --address ...`` once results flow; ``--resume`` completes the file."""
    out = tmp_path / "killed.jsonl"
    address = ray.get_runtime_context().gcs_address
    inputs = []
    for copy in range(4):  # 4 x 122 distinct paths (links to the clips): the run is surely going after 40 lines
        sub = tmp_path / f"copy{copy}"
        sub.mkdir()
        for f in sorted(folder.iterdir()):
            (sub / f.name).symlink_to(f)
        inputs.append(str(sub))
    argv = [sys.executable, "-m", "voxemo", "predict", "--engine", "ray", "--address", address, "--jobs", "2",
            "--output", str(out), *inputs]
    # the command line pins numpy's kernels to AVX2 unless told otherwise; this process did not, and the default
    # model's int8 encoder turns their last-bit differences into third-decimal ones: compute as this process does
    from voxemo.core.reproducible import PINS

    env = {**os.environ, **{k: os.environ.get(k, "") for k in PINS}}
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 120
        while (not out.exists() or out.read_bytes().count(b"\n") < 40) and proc.poll() is None:
            assert time.monotonic() < deadline, "no results within 2 minutes"
            time.sleep(0.02)
    finally:
        proc.kill()
        _, err = proc.communicate()
    done_before = out.read_bytes().count(b"\n")
    assert 40 <= done_before < 4 * (N_GOOD + len(BAD)), err.decode()[-2000:]

    summary = predict_batch(inputs, output=out, jobs=2, engine="ray", resume=True)
    assert summary.skipped == done_before
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["path"] for r in rows] == [p for p, _ in expand_inputs(inputs)]  # each input once, in order
    by_name = {Path(r["path"]).name: r for r in map(json.loads, reference["jsonl"].read_text().splitlines())}
    for row in rows:
        want = by_name[Path(row["path"]).name]
        assert {k: v for k, v in row.items() if k not in ("path", "error")} == \
            {k: v for k, v in want.items() if k not in ("path", "error")}


class CrashOn(WorkerSettings):
    """Settings whose classifier kills its worker process on one file (as a crash in a decoder would)."""

    def load(self):  # type: ignore[no-untyped-def]
        clf = super().load()
        original = clf.predict_result

        def predict_result(path, **kw):  # type: ignore[no-untyped-def]
            if "clip005" in str(path):
                os._exit(1)
            return original(path, **kw)

        clf.predict_result = predict_result  # type: ignore[method-assign]
        return clf


def test_a_file_that_kills_its_worker_is_one_error_row(runtime: object, folder: Path) -> None:
    from ray import cloudpickle

    from voxemo.inference.distributed import TASK_RETRIES, ray_stream

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the actors cannot import this test module
    items = list(expand_inputs([folder]))[:12]
    results = list(ray_stream(iter(items), CrashOn(), jobs=1, chunk=4))
    assert [r.path for r in results] == [p for p, _ in items]
    failed = [r for r in results if isinstance(r, FileFailure) and "Ray worker" in r.error]
    assert [r.path for r in failed] == [p for p, _ in items if "clip005" in p]
    others = [r for r in results if isinstance(r, FileFailure) and r not in failed]
    assert sorted(Path(r.path).name for r in others) == sorted(BAD)  # the corrupt files, as always
    assert f"died on this file {TASK_RETRIES + 1} times" in failed[0].error


@pytest.mark.parametrize("argv", [["predict", "x.wav", "--engine", "ray"], ["evaluate", "--engine", "ray", "--out",
                                                                             "o"]])
def test_without_the_extra_engine_ray_says_what_to_install(argv: list[str], monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails as if it were not installed
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == (f"voxemo: error: voxemo {argv[0]} --engine ray needs ray, which is not installed: "
                   "pip install 'voxemo[ray]'\n")
    with pytest.raises(MissingExtraError):
        predict_batch(["x.wav"], engine="ray")


def test_relative_paths_mean_what_they_mean_to_the_driver(runtime: object, folder: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(folder.parent)  # the actors work in the driver's folder: relative inputs resolve there too
    local, remote = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    predict_batch([folder.name], output=local, jobs=1)
    predict_batch([folder.name], output=remote, jobs=2, engine="ray")
    assert remote.read_text() == local.read_text()
    assert json.loads(remote.read_text().splitlines()[0])["path"].startswith(folder.name + "/")
