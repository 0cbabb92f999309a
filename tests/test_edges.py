"""The edges a careful user or an attacker finds (issue trust-2): no NaN in any answer, a manifest's bad row costs
only that row, the Python API hears speech first, and the CLI's odd arguments, files and streams give one line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voxemo.apps.cli import main
from voxemo.core.errors import NoSpeechError
from voxemo.inference.loading import load_model


@pytest.fixture(scope="module")
def clip(real_ravdess: Path) -> Path:
    return sorted((real_ravdess / "Actor_01").glob("03-01-05-*"))[0]


@pytest.fixture(scope="module")
def huge(clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The clip as 32-bit float samples scaled by 1e30: finite, absurd, and enough to overflow every power."""
    y, sr = sf.read(str(clip), dtype="float32")
    path = tmp_path_factory.mktemp("huge") / "huge.wav"
    sf.write(str(path), (y.astype(np.float64) * 1e30).astype(np.float32), sr, subtype="FLOAT")
    return path


def test_a_file_of_huge_samples_is_heard_at_full_scale_and_never_gives_nan(clip: Path, huge: Path,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    clf = load_model()
    probs = clf.predict_proba(huge)
    assert np.isfinite(probs).all() and abs(float(probs.sum()) - 1) < 1e-4
    assert clf.predict(huge) == clf.predict(clip)  # the same sound at another gain
    assert main(["predict", "--json", str(huge)]) == 0
    row = json.loads(capsys.readouterr().out.splitlines()[-1], parse_constant=lambda c: pytest.fail(c))
    assert row["speech"] and all(np.isfinite(list(row["probabilities"].values())))


def test_adaptation_with_a_huge_file_stays_finite(real_ravdess: Path, huge: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    clips = [str(p) for p in sorted((real_ravdess / "Actor_02").glob("*.*"))[:12]]
    out = tmp_path / "m3"
    assert main(["-q", "adapt", *clips, str(huge), "--out", str(out), "--jobs", "1", "--min-seconds", "5"]) == 0
    record = (out / "adaptation.json").read_text()
    assert "NaN" not in record and "Infinity" not in record
    assert np.isfinite(load_model(out).predict_proba(huge)).all()


def test_the_api_hears_speech_first(clip: Path, tmp_path: Path) -> None:
    """predict and predict_proba say "no speech" for noise as the CLI does; speech_check=False is the raw answer."""
    clf = load_model()
    noise = tmp_path / "noise.wav"
    sf.write(str(noise), np.random.default_rng(0).normal(0, 0.1, 32000).astype(np.float32), 16000)
    assert clf.predict(noise) is None
    with pytest.raises(NoSpeechError, match=r"noise\.wav: no speech found"):
        clf.predict_proba(noise)
    raw = clf.predict_proba(noise, speech_check=False)
    assert raw.shape == (len(clf.classes_),) and abs(float(raw.sum()) - 1) < 1e-4
    labels = clf.predict([clip, noise])
    assert labels[0] in clf.classes_ and labels[1] is None
    assert isinstance(clf.predict(noise, speech_check=False), str)


def test_a_bad_manifest_row_costs_only_that_row(real_ravdess: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Too long a name, a non-UTF-8 byte, a NUL byte and an oversized CSV field: each one error, every good row
    still predicted, in CSV and in JSON lines."""
    good = [str(p).encode() for p in sorted((real_ravdess / "Actor_03").glob("*.*"))[:5]]
    bad_csv = [b"/tmp/" + b"a" * 300 + b".wav", b"/tmp/caf\xe9.wav", b"/tmp/x\x00y.wav",
               b'"/tmp/' + b"b" * 200_000 + b'.wav"']
    rows = [b"path"]
    for g, b in zip(good, bad_csv + [b""]):
        rows += [g, b] if b else [g]
    (tmp_path / "m.csv").write_bytes(b"\n".join(rows) + b"\n")
    bad_json = [b'{"path": "/tmp/' + b"a" * 300 + b'.wav"}', b'{"path": "/tmp/caf\xe9.wav"}',
                b'{"path": "/tmp/x\\u0000y.wav"}', b"{not json"]
    lines = []
    for g, b in zip(good, bad_json + [b""]):
        lines += [b'{"path": "' + g + b'"}', b] if b else [b'{"path": "' + g + b'"}']
    (tmp_path / "m.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    for manifest in ("m.csv", "m.jsonl"):
        assert main(["predict", "--json", "--jobs", "1", str(tmp_path / manifest)]) == 1
        out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert sum("emotion" in r and r.get("speech") for r in out) == 5, manifest
        errors = [r["error"] for r in out if "error" in r]
        assert len(errors) == 4, errors
        assert all("\n" not in e for e in errors)


@pytest.mark.parametrize("args, message", [
    (["predict", "--jobs", "-3", "x.wav"], "--jobs: '-3' cannot be negative"),
    (["adapt", "x.wav", "--out", "o", "--min-seconds", "nan"], "--min-seconds: 'nan' is not a finite number"),
    (["adapt", "x.wav", "--out", "o", "--prior-seconds", "-5"], "--prior-seconds: '-5' cannot be negative"),
    (["predict", "--min-confidence", "2", "x.wav"], "'2' is not a probability"),
])
def test_odd_numbers_are_refused_where_they_are_parsed(args: list[str], message: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_odd_files_and_outputs_give_one_line(clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo, loop, many = tmp_path / "fifo.wav", tmp_path / "loop.wav", tmp_path / "many.wav"
    os.mkfifo(fifo)
    os.symlink(loop, loop)
    sf.write(str(many), np.zeros((1600, 80), np.float32), 16000)
    assert main(["predict", "--json", str(fifo), str(loop), str(many), "/dev/zero"]) == 1
    errors = [json.loads(line)["error"] for line in capsys.readouterr().out.splitlines()]
    assert [e.split(": ", 1)[1] for e in errors] == [
        "is a FIFO, not an audio file", "unusable path (Too many levels of symbolic links)",
        "80 channels in its header, more than any recording voxemo reads (64): a corrupt header?",
        "is a device or socket, not an audio file"]
    existing = tmp_path / "existing.wav"
    existing.write_bytes(b"x")
    assert main(["-q", "adapt", str(clip), "--out", str(existing), "--min-seconds", "1", "--jobs", "1"]) == 2
    assert capsys.readouterr().err.strip() == f"voxemo: error: {existing}: File exists"
    if Path("/dev/full").exists():
        assert main(["-q", "predict", "--json", "--output", "/dev/full", str(clip)]) == 2
        assert "No space left on device" in capsys.readouterr().err


def test_a_closed_stdout_is_a_warning_not_a_traceback(clip: Path) -> None:
    code = f"from voxemo.apps.cli import main; raise SystemExit(main(['-q', 'predict', {str(clip)!r}]))"
    out = subprocess.run(f"{sys.executable} -c \"{code}\" >&-", shell=True, capture_output=False,
                         stderr=subprocess.PIPE, text=True, timeout=120)
    assert out.returncode == 0 and out.stderr.strip() == "voxemo: warning: standard output is closed", out.stderr


def test_the_service_and_the_timeline_never_answer_nan(huge: Path) -> None:
    from fastapi.testclient import TestClient

    from voxemo.apps.service import create_app
    from voxemo.inference.timeline import timeline

    with TestClient(create_app(load_model(), max_upload_mb=20, max_seconds=60)) as client:
        r = client.post("/predict", files={"file": ("huge.wav", huge.read_bytes(), "audio/wav")})
    assert r.status_code == 200, r.text
    body = json.loads(r.text, parse_constant=lambda c: pytest.fail(c))
    assert body["speech"] and all(v is not None and np.isfinite(v) for v in body["probabilities"].values())
    tl = timeline(huge, load_model())
    assert tl.segments and json.dumps(tl.to_dict(), allow_nan=False)


def test_a_bad_manifest_row_does_not_hide_the_other_rows_columns(tmp_path: Path) -> None:
    """``predict --adapt-by`` reads a column the way ``predict`` reads the paths: a row the CSV reader refuses costs
    only that row."""
    from voxemo.io.manifest import manifest_column

    clips = [tmp_path / f"{i}.wav" for i in range(3)]
    for c in clips:
        c.write_bytes(b"x")
    rows = [b"path,speaker", f"{clips[0]},a".encode(), b"/tmp/x\x00y.wav,b", b'"' + b"z" * 200_000 + b'",c',
            f"{clips[1]},d".encode(), f"{clips[2]},".encode()]
    (tmp_path / "m.csv").write_bytes(b"\n".join(rows) + b"\n")
    assert manifest_column(tmp_path / "m.csv", "speaker") == {str(clips[0]): "a", str(clips[1]): "d"}
