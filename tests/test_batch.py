"""``voxemo predict`` at scale: manifests, streamed JSON lines / CSV, resume after a kill, worker processes."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from conftest import voiced
from voxemo.apps.cli import main
from voxemo.core.labels import EMOTIONS
from voxemo.core.records import Utterance
from voxemo.inference import batch
from voxemo.inference.batch import predict_stream
from voxemo.inference.classifier import Classifier
from voxemo.inference.loading import load_model
from voxemo.inference.output import ResultWriter
from voxemo.inference.results import FileFailure, FileResult
from voxemo.io.discovery import expand_inputs
from voxemo.io.manifest import write_manifest

N_GOOD = 300
BAD = {"bad_text.wav": b"RIFF but not really a wav file", "bad_empty.wav": b"", "bad_junk.flac": bytes(range(256))}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few hundred tiny WAVs (0.4 s of voice-like signal at 8 kHz) in two subfolders, plus some corrupt files."""
    root = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(5)
    for i in range(N_GOOD):
        path = root / f"part{i % 2}" / f"clip{i:03d}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(str(path), voiced(0.4, 8000, rng, f0=100 + (i % 8) * 25), 8000, subtype="PCM_16")
    for name, data in BAD.items():
        (root / "part1" / name).write_bytes(data)
    return root


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every file the in-process classifier predicts (jobs=1), in order."""
    seen: list[str] = []
    original = Classifier.predict_result

    def predict_result(self: Classifier, path: str) -> FileResult:
        seen.append(str(path))
        return original(self, path)

    monkeypatch.setattr(Classifier, "predict_result", predict_result)
    return seen


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["predict", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_json_lines_stream_every_input_in_order(folder: Path, tiny_model_dir: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results.jsonl"
    code, stdout, err = run(capsys, "--model", str(tiny_model_dir), "--jobs", "1", "--output", str(out), str(folder))
    assert code == 1  # the corrupt files failed
    assert stdout == "" and f"predicted {N_GOOD + len(BAD)} inputs ({len(BAD)} failed) into {out}" in err
    rows = read_jsonl(out)
    assert [r["path"] for r in rows] == [p for p, _ in expand_inputs([folder])]  # input order
    assert len(rows) == N_GOOD + len(BAD)
    errors = {Path(r["path"]).name: r["error"] for r in rows if "error" in r}
    assert set(errors) == set(BAD)
    assert all(msg.startswith(str(folder)) and "\n" not in msg for msg in errors.values())
    for r in rows:
        if "error" not in r:
            assert r["emotion"] in EMOTIONS and abs(sum(r["probabilities"].values()) - 1) < 1e-3


def test_csv_output_has_one_column_per_class(folder: Path, tiny_model_dir: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results.csv"  # the suffix picks CSV
    code, _, _ = run(capsys, "--model", str(tiny_model_dir), "--jobs", "1", "--output", str(out),
                     str(folder / "part1"))
    assert code == 1
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["path", "emotion", "confidence", *EMOTIONS, "error", "speech", "reason"]
    assert len(rows) == N_GOOD // 2 + len(BAD)
    for r in rows:
        if r["error"]:
            assert r["emotion"] == "" and Path(r["path"]).name in BAD
            assert r["speech"] == r["reason"] == ""
        else:
            assert r["speech"] == "true" and r["reason"] == ""
            probs = {c: float(r[c]) for c in EMOTIONS}
            assert probs[r["emotion"]] == max(probs.values()) and float(r["confidence"]) == probs[r["emotion"]]

    # to stdout with --csv: the same rows
    code, stdout, err = run(capsys, "--model", str(tiny_model_dir), "--jobs", "1", "--csv", str(folder / "part1"))
    assert code == 1 and err == ""
    assert stdout == out.read_text()


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_resume_after_a_kill_redoes_only_unfinished_files(fmt: str, folder: Path, tiny_model_dir: Path,
                                                          tmp_path: Path, counted: list[str],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / f"results.{fmt}"
    args = ["--model", str(tiny_model_dir), "--jobs", "1", "--output", str(out), str(folder)]
    run(capsys, *args)
    full = out.read_bytes()
    lines = full.splitlines(keepends=True)
    n_inputs = N_GOOD + len(BAD)
    assert len(counted) == n_inputs

    # a kill in the middle of writing line 101: 100 whole results (plus the CSV header) and half a line
    header = 1 if fmt == "csv" else 0
    out.write_bytes(b"".join(lines[: header + 100]) + lines[header + 100][:17])
    counted.clear()
    code, _, err = run(capsys, "--resume", *args)
    assert code == 1  # the corrupt files are still failures of this output
    assert len(counted) == n_inputs - 100  # the cut line's file is redone, the 100 finished ones are not
    assert counted[0] == [p for p, _ in expand_inputs([folder])][100]
    assert "skipped 100 already there (0 failed)" in err
    assert out.read_bytes() == full  # the cut line was repaired, nothing is duplicated

    # the last results removed: only those are redone
    out.write_bytes(b"".join(lines[:-7]))
    counted.clear()
    run(capsys, "--resume", *args)
    assert len(counted) == 7 and out.read_bytes() == full

    # a finished output: nothing to do; recorded errors are not retried, and still set the exit code
    counted.clear()
    code, _, err = run(capsys, "--resume", *args)
    assert counted == [] and code == 1 and out.read_bytes() == full
    assert f"predicted 0 inputs (0 failed) into {out}; skipped {n_inputs} already there ({len(BAD)} failed)" in err


def test_resume_after_a_real_kill(folder: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    """SIGKILL a running ``voxemo predict`` once results are flowing; ``--resume`` completes the same output."""
    out = tmp_path / "killed.jsonl"
    argv = [sys.executable, "-m", "voxemo", "predict", "--model", str(tiny_model_dir), "--jobs", "1",
            "--output", str(out), str(folder)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while (not out.exists() or out.read_bytes().count(b"\n") < 30) and proc.poll() is None:
            assert time.monotonic() < deadline, "no results within 2 minutes"
            time.sleep(0.02)
    finally:
        proc.kill()
        proc.wait()
    done_before = out.read_bytes().count(b"\n")
    assert 30 <= done_before < N_GOOD + len(BAD)  # killed mid-run

    resumed = subprocess.run([*argv, "--resume"], capture_output=True, text=True)
    assert resumed.returncode == 1 and "Traceback" not in resumed.stderr  # 1: the corrupt files
    rows = read_jsonl(out)
    assert [r["path"] for r in rows] == [p for p, _ in expand_inputs([folder])]  # each input once, in order
    assert f"skipped {done_before} already there" in resumed.stderr


def test_resume_into_a_missing_file_starts_it(folder: Path, tiny_model_dir: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "new.csv"
    code, _, _ = run(capsys, "--model", str(tiny_model_dir), "--resume", "--output", str(out),
                     str(folder / "part0" / "clip000.wav"))
    assert code == 0
    assert out.read_text().splitlines()[0].startswith("path,emotion,confidence,")


def test_resume_refuses_a_file_it_did_not_write(folder: Path, tiny_model_dir: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    clip = str(folder / "part0" / "clip000.wav")
    notes = tmp_path / "notes.jsonl"
    notes.write_text("my notes, not results\n")
    code, _, err = run(capsys, "--model", str(tiny_model_dir), "--resume", "--output", str(notes), clip)
    assert code == 2 and err.startswith(f"voxemo: error: {notes}:1: not a voxemo JSON result line")
    assert notes.read_text() == "my notes, not results\n"
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    code, _, err = run(capsys, "--model", str(tiny_model_dir), "--resume", "--output", str(other), clip)
    assert code == 2 and "is not this model's" in err and len(err.splitlines()) == 1
    # a file whose last line has no newline is refused as it is: nothing of it is cut off first
    for name, text in (("log.jsonl", "line one\nline two without newline"), ("one.jsonl", "no newline at all"),
                       ("table.csv", "x,y\n1,2\n3,")):
        target = tmp_path / name
        target.write_text(text)
        code, _, err = run(capsys, "--model", str(tiny_model_dir), "--resume", "--output", str(target), clip)
        assert code == 2 and len(err.splitlines()) == 1 and err.startswith(f"voxemo: error: {target}")
        assert target.read_text() == text
    code, _, err = run(capsys, "--model", str(tiny_model_dir), "--resume", clip)
    assert code == 2 and err == "voxemo: error: --resume needs --output FILE: it continues the results already " \
                                "written there\n"


def test_manifests_as_inputs(folder: Path, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    clips = sorted((folder / "part0").glob("*.wav"))[:4]
    # a voxemo manifest with relative paths: found from the manifest's folder
    monkeypatch.chdir(tmp_path)
    jsonl = write_manifest([Utterance(path=str(c.relative_to(folder)), corpus="x", speaker="1", emotion="sad")
                            for c in clips], folder / "m.jsonl")
    plain = tmp_path / "list.csv"
    plain.write_text("id,path\n" + "".join(f"{i},{c}\n" for i, c in enumerate(clips)) + "9,\n")
    broken = tmp_path / "broken.jsonl"
    broken.write_text(f'{{"path": "{clips[0]}"}}\n{{not json\n\n[1, 2]\n')
    no_column = tmp_path / "nocol.csv"
    no_column.write_text("file\nx.wav\n")

    items = list(expand_inputs([jsonl, plain, broken, no_column]))
    assert [p for p, e in items[:4]] == [str(folder / c.relative_to(folder)) for c in clips]
    assert items[4:8] == [(str(c), None) for c in clips]
    assert items[8] == (f"{plain}:6", f"{plain}:6: no path in this manifest line")
    assert items[9] == (str(clips[0]), None)
    assert items[10] == (f"{broken}:2", f"{broken}:2: not a JSON object")
    assert items[11] == (f"{broken}:4", f"{broken}:4: no path in this manifest line")
    assert items[12][0] == str(no_column) and "no 'path' column" in str(items[12][1])
    assert len(items) == 13

    code, stdout, _ = run(capsys, "--model", str(tiny_model_dir), "--json", str(jsonl), str(plain))
    rows = [json.loads(line) for line in stdout.splitlines()]
    assert code == 1 and len(rows) == 9 and sum("error" in r for r in rows) == 1


def test_workers_give_the_same_results_with_bounded_work_in_flight(folder: Path, tiny_model_dir: Path,
                                                                    counted: list[str],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    clf = load_model(tiny_model_dir)
    items = list(expand_inputs([folder]))
    assert len(items) >= batch.MIN_PARALLEL  # enough inputs for the worker pool to start, as the CLI would
    serial = list(predict_stream(items, clf, jobs=1))
    counted.clear()

    # the parent keeps out of the work: every file goes through the workers
    monkeypatch.setattr(batch, "MIN_PARALLEL", 16)  # a small look-ahead makes the bound on reading visible
    pulled = 0

    def source() -> Iterator[tuple[str, str | None]]:
        nonlocal pulled
        for item in items:
            pulled += 1
            yield item

    results = []
    for result in predict_stream(source(), clf, model=str(tiny_model_dir), jobs=2, help_while_starting=False):
        if not results:  # the first result comes while most inputs are still unread
            assert pulled <= 16 + batch.IN_FLIGHT_PER_JOB * 2 * batch.CHUNK < len(items) // 4
        results.append(result)
    assert counted == []  # not one file predicted in this process
    assert results == serial

    # the parent predicts the first files while the workers start: same results, same order
    monkeypatch.undo()
    assert list(predict_stream(items, clf, model=str(tiny_model_dir), jobs=2)) == serial


def test_output_needs_a_machine_format_and_jobs_must_be_valid(folder: Path, tiny_model_dir: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    clip = str(folder / "part0" / "clip000.wav")
    with pytest.raises(SystemExit) as exited:  # refused where it is parsed, before any work
        main(["predict", "--model", str(tiny_model_dir), "--jobs", "-1", clip])
    assert exited.value.code == 2 and "--jobs: '-1' cannot be negative" in capsys.readouterr().err
    writer = ResultWriter(io.StringIO(), "json", EMOTIONS)
    writer.write(FileFailure("a.wav", "a.wav: broken"))
    assert json.loads(writer.out.getvalue()) == {"path": "a.wav", "error": "a.wav: broken"}


def _descendants(pid: int) -> dict[int, int]:
    """Live (not zombie) processes below ``pid``, each with its parent's pid, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = {}, [pid]
    while todo:
        parent = todo.pop()
        for child in children.get(parent, []):
            found[child] = parent
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _still_running(pids: Iterable[int], seconds: float) -> set[int]:
    """Those of ``pids`` still running after up to ``seconds``; the test's own leftovers are killed."""
    deadline = time.monotonic() + seconds
    while (left := {p for p in pids if _alive(p)}) and time.monotonic() < deadline:
        time.sleep(0.05)
    for p in left:
        os.kill(p, signal.SIGKILL)
    return left


def _predict_with_workers(folder: Path, model: Path, tmp_path: Path,
                          **popen: Any) -> tuple[subprocess.Popen[bytes], set[int]]:
    """``voxemo predict --jobs 2`` started once both of its workers run: the process, and every process below it."""
    # enough inputs (each clip 20 times) that the run lasts well past the workers' start on any machine
    clips = [p for p, error in expand_inputs([folder]) if error is None]
    manifest = tmp_path / "many.csv"
    manifest.write_text("path\n" + "".join(f"{c}\n" for c in clips * 20))
    argv = [sys.executable, "-m", "voxemo", "predict", "--model", str(model), "--jobs", "2",
            "--output", str(tmp_path / "killed.jsonl"), str(manifest)]
    proc = subprocess.Popen(argv, **popen)
    try:
        deadline = time.monotonic() + 120
        # the workers are the fork server's children, below the parent's own (fork server, resource tracker)
        while True:
            below = _descendants(proc.pid)
            if sum(parent != proc.pid for parent in below.values()) >= 2:
                break
            assert proc.poll() is None, "the run ended before its workers were seen"
            assert time.monotonic() < deadline, "the workers did not start within 2 minutes"
            time.sleep(0.05)
    except BaseException:
        below = _descendants(proc.pid)
        proc.kill()
        proc.wait()
        _still_running(below, 0)
        raise
    return proc, set(below)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find the worker processes")
def test_workers_exit_when_the_parent_is_killed(folder: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    """``kill -9`` of ``voxemo predict --jobs 2``: its fork server and workers are gone within seconds."""
    proc, below = _predict_with_workers(folder, tiny_model_dir, tmp_path,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc.kill()
    proc.wait()
    left = _still_running(below, 15)
    assert left == set(), f"still running 15 s after the parent was killed: {sorted(left)}"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find the worker processes")
def test_killed_parent_left_unreaped_does_not_hang_its_reader(folder: Path, tiny_model_dir: Path,
                                                              tmp_path: Path) -> None:
    """``p.kill(); p.communicate()`` on ``voxemo predict --jobs 2``: the parent stays a zombie until its pipes
    close, which its workers (and fork server) hold: they must notice its end all the same, and exit."""
    proc, below = _predict_with_workers(folder, tiny_model_dir, tmp_path,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.kill()
    started = time.monotonic()
    try:
        proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        _still_running(below, 0)
        proc.communicate()
        pytest.fail("the pipes of the killed parent were still open after 15 s")
    assert time.monotonic() - started < 15
    assert _still_running(below, 5) == set()


# A script whose pool of two sleeping workers (through pmap, as `voxemo run` trains its variants) is interrupted.
_SLEEPING_POOL = """
import os
import sys
import time
from pathlib import Path

from voxemo.core.parallel import pmap


def nap(folder: str) -> None:
    Path(folder, str(os.getpid())).touch()
    time.sleep(120)


if __name__ == "__main__":
    pmap(nap, [sys.argv[1]] * 2, jobs=2, chunksize=1, progress=False, start_method=sys.argv[2])
"""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to see the worker processes")
@pytest.mark.parametrize("start_method", ["spawn", "fork", "forkserver"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=["TERM", "INT", "KILL"])
def test_pool_workers_stop_with_their_parent(tmp_path: Path, start_method: str, signum: int) -> None:
    """TERM, INT or KILL to a process whose pool workers are mid-task: the workers are gone within seconds, not
    after their task; TERM ends the parent with status 128 + 15."""
    script, started = tmp_path / "pool.py", tmp_path / "started"
    script.write_text(_SLEEPING_POOL)
    started.mkdir()
    proc = subprocess.Popen([sys.executable, str(script), str(started), start_method],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while len(workers := {int(p.name) for p in started.iterdir()}) < 2:
            assert proc.poll() is None, proc.communicate()[1].decode()
            assert time.monotonic() < deadline, "the workers did not start within a minute"
            time.sleep(0.05)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=15)
    finally:  # whatever happened, no sleeping worker outlives the test
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        left = _still_running(workers, 5)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    assert left == set(), f"workers still running 5 s after {signal.Signals(signum).name}: {sorted(left)}"
    if signum == signal.SIGTERM:
        assert proc.returncode == 128 + signal.SIGTERM and b"Traceback" not in err


def test_a_script_without_a_main_guard_is_told_what_to_add(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    plain, guarded = tmp_path / "plain.py", tmp_path / "guarded.py"
    plain.write_text("import voxemo\nvoxemo.predict_batch(['calls/'], output='r.jsonl')\n")
    guarded.write_text("import voxemo\nif __name__ == '__main__':\n    voxemo.predict_batch(['calls/'])\n")
    main = types.ModuleType("__main__")
    monkeypatch.setitem(sys.modules, "__main__", main)
    main.__file__ = str(plain)
    assert 'put the call under `if __name__ == "__main__":`, or pass jobs=1' in str(batch._died("a.wav"))
    main.__file__ = str(guarded)
    assert "rerun with --output FILE --resume" in str(batch._died("a.wav"))


def test_predict_batch_takes_an_adapted_model_in_memory(folder: Path, tmp_path: Path, rng: np.random.Generator,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """One model reference for every path: a classifier adapted in memory is used as it is, in this process and in
    the worker processes (which load a copy saved for the run and deleted after it)."""
    import tempfile

    from voxemo.inference.adaptset import adaptation_set
    from voxemo.inference.batch import predict_batch

    base = load_model("voice")
    specs = [rng.normal(-30, 12, (40, 300)).astype(np.float32) for _ in range(20)]
    adapted = base.adapted(adaptation_set([f"c{i}" for i in range(20)], specs, base.config, min_seconds=0),
                           prior_seconds=0.0)
    assert adapted.model_dir is None
    runs = {}
    before = set(Path(tempfile.gettempdir()).glob("voxemo-model-*"))
    monkeypatch.setattr(batch, "MIN_PARALLEL", 4)
    for name, model, jobs in (("in process", adapted, 1), ("workers", adapted, 2), ("shipped", "voice", 1)):
        out = tmp_path / f"{name}.jsonl"
        predict_batch([folder], model=model, output=out, jobs=jobs)
        runs[name] = read_jsonl(out)
    assert runs["workers"] == runs["in process"]
    assert runs["in process"] != runs["shipped"]  # the adaptation is what was used
    assert set(Path(tempfile.gettempdir()).glob("voxemo-model-*")) == before  # the run's copy is gone
