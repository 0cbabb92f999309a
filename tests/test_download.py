"""Resumable downloads and the RAVDESS archive, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voxemo.core.errors import CorpusError, DownloadError
from voxemo.corpus import download as dl
from voxemo.corpus import load_ravdess


@dataclass
class ServerState:
    """What the test server serves and how it misbehaves; ``requests`` logs ``(path, Range header)``."""

    files: dict[str, bytes] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)
    honour_range: bool = True
    drop_after: int | None = None  # close the connection after this many body bytes, once
    requests: list[tuple[str, str | None]] = field(default_factory=list)


class Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        state: ServerState = self.server.state  # type: ignore[attr-defined]
        rng = self.headers.get("Range")
        state.requests.append((self.path, rng))
        if self.path in state.redirects:
            self.send_response(302)
            self.send_header("Location", state.redirects[self.path])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = state.files.get(self.path)
        if data is None:
            self.send_error(404, "Not Found")
            return
        start = 0
        if rng and state.honour_range:
            start = int(rng.removeprefix("bytes=").rstrip("-"))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if state.drop_after is not None:
            body, state.drop_after = body[: state.drop_after], None
        self.wfile.write(body)


@pytest.fixture(scope="module")
def httpd() -> Iterator[ThreadingHTTPServer]:
    """A threaded HTTP server on an ephemeral port, shared by the module's tests."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def server(httpd: ThreadingHTTPServer) -> tuple[str, ServerState]:
    """``(base URL, state)``: the shared server with a fresh state for this test."""
    httpd.state = ServerState()  # type: ignore[attr-defined]
    return f"http://127.0.0.1:{httpd.server_address[1]}", httpd.state  # type: ignore[attr-defined]


PAYLOAD = bytes(np.random.default_rng(7).integers(0, 256, 300_000, dtype=np.uint8))


def ravdess_names(actors: range = range(1, 25)) -> list[str]:
    """The 60 speech clip names per actor: 8 emotions x intensity (neutral: normal only) x 2 statements x 2 reps."""
    return [
        f"Actor_{a:02d}/03-01-{e:02d}-{i:02d}-{s:02d}-{r:02d}-{a:02d}.wav"
        for a in actors
        for e in range(1, 9)
        for i in ((1,) if e == 1 else (1, 2))
        for s in (1, 2)
        for r in (1, 2)
    ]


def make_zip(names: list[str]) -> bytes:
    """A zip of tiny valid WAV clips (0.05 s of noise at 8 kHz) with the given member names."""
    rng = np.random.default_rng(0)
    clip = io.BytesIO()
    sf.write(clip, 0.1 * rng.standard_normal(400).astype(np.float32), 8000, format="WAV", subtype="PCM_16")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in names:
            zf.writestr(name, clip.getvalue())
    return buf.getvalue()


@pytest.fixture(scope="module")
def ravdess_zip() -> bytes:
    return make_zip(ravdess_names())


# -- download ---------------------------------------------------------------------------------------------------


def test_full_download(server, tmp_path: Path) -> None:
    url, state = server
    state.files["/f.bin"] = PAYLOAD
    dest = dl.download(f"{url}/f.bin", tmp_path / "sub" / "f.bin", expected_size=len(PAYLOAD), progress=True,
                       chunk_size=65536)
    assert dest == tmp_path / "sub" / "f.bin"
    assert dest.read_bytes() == PAYLOAD
    assert not (tmp_path / "sub" / "f.bin.part").exists()
    assert state.requests == [("/f.bin", None)]


def test_complete_file_is_not_downloaded_again(server, tmp_path: Path) -> None:
    url, state = server
    state.files["/f.bin"] = PAYLOAD
    dest = dl.download(f"{url}/f.bin", tmp_path / "f.bin", progress=False)
    dl.download(f"{url}/f.bin", dest, progress=False)
    dl.download(f"{url}/f.bin", dest, expected_size=len(PAYLOAD), progress=False)
    assert len(state.requests) == 1


def test_resume_from_part_file(server, tmp_path: Path) -> None:
    url, state = server
    state.files["/f.bin"] = PAYLOAD
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD[:123_456])
    dest = dl.download(f"{url}/f.bin", tmp_path / "f.bin", progress=False)
    assert state.requests == [("/f.bin", "bytes=123456-")]
    assert dest.read_bytes() == PAYLOAD


def test_resume_follows_redirect_with_range(server, tmp_path: Path) -> None:
    url, state = server
    state.files["/f.bin"] = PAYLOAD
    state.redirects["/record?download=1"] = f"{url}/f.bin"
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD[:5000])
    dest = dl.download(f"{url}/record?download=1", tmp_path / "f.bin", expected_size=len(PAYLOAD), progress=False)
    assert state.requests == [("/record?download=1", "bytes=5000-"), ("/f.bin", "bytes=5000-")]
    assert dest.read_bytes() == PAYLOAD


def test_complete_part_file_answered_416_counts_as_done(server, tmp_path: Path) -> None:
    url, state = server
    state.files["/f.bin"] = PAYLOAD
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD)
    dest = dl.download(f"{url}/f.bin", tmp_path / "f.bin", expected_size=len(PAYLOAD), progress=False)
    assert state.requests == [("/f.bin", f"bytes={len(PAYLOAD)}-")]
    assert dest.read_bytes() == PAYLOAD


def test_server_ignoring_range_restarts_from_zero(server, tmp_path: Path) -> None:
    url, state = server
    state.files["/f.bin"] = PAYLOAD
    state.honour_range = False
    (tmp_path / "f.bin.part").write_bytes(b"x" * 1000)  # would corrupt the file if appended to
    dest = dl.download(f"{url}/f.bin", tmp_path / "f.bin", progress=False)
    assert state.requests == [("/f.bin", "bytes=1000-")]
    assert dest.read_bytes() == PAYLOAD


def test_dropped_connection_keeps_part_and_rerun_resumes(server, tmp_path: Path) -> None:
    url, state = server
    state.files["/f.bin"] = PAYLOAD
    state.drop_after = 100_000
    with pytest.raises(DownloadError, match=r"stopped after 100000 of 300000 bytes.*rerun to resume") as err:
        dl.download(f"{url}/f.bin", tmp_path / "f.bin", progress=False, chunk_size=4096)
    assert f"{url}/f.bin" in str(err.value)
    assert (tmp_path / "f.bin.part").stat().st_size == 100_000
    assert not (tmp_path / "f.bin").exists()
    dest = dl.download(f"{url}/f.bin", tmp_path / "f.bin", progress=False)
    assert state.requests[-1] == ("/f.bin", "bytes=100000-")
    assert dest.read_bytes() == PAYLOAD


def test_size_mismatch_raises(server, tmp_path: Path) -> None:
    url, state = server
    state.files["/f.bin"] = PAYLOAD
    with pytest.raises(DownloadError, match=rf"offers {len(PAYLOAD)} bytes but {len(PAYLOAD) + 1} were expected"):
        dl.download(f"{url}/f.bin", tmp_path / "f.bin", expected_size=len(PAYLOAD) + 1, progress=False)
    assert not (tmp_path / "f.bin").exists()


def test_oversized_part_file_is_discarded(server, tmp_path: Path) -> None:
    url, state = server
    state.files["/f.bin"] = PAYLOAD
    (tmp_path / "f.bin.part").write_bytes(b"x" * (len(PAYLOAD) + 10))
    dest = dl.download(f"{url}/f.bin", tmp_path / "f.bin", expected_size=len(PAYLOAD), progress=False)
    assert state.requests == [("/f.bin", None)]
    assert dest.read_bytes() == PAYLOAD


def test_404_raises_clear_message(server, tmp_path: Path) -> None:
    url, _ = server
    with pytest.raises(DownloadError) as err:
        dl.download(f"{url}/missing.zip", tmp_path / "m.zip", progress=False)
    msg = str(err.value)
    assert f"{url}/missing.zip" in msg and "HTTP 404" in msg and "\n" not in msg
    assert not (tmp_path / "m.zip").exists()


def test_unreachable_server_raises(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match=rf"cannot download http://127.0.0.1:{port}/x.*rerunning resumes"):
        dl.download(f"http://127.0.0.1:{port}/x", tmp_path / "x", progress=False, timeout=5)


def test_malformed_url_raises(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="cannot download zenodo.org/x"):
        dl.download("zenodo.org/x", tmp_path / "x", progress=False)


def test_bad_chunk_size_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="chunk_size=0"):
        dl.download("http://127.0.0.1:1/x", tmp_path / "x", chunk_size=0)


# -- RAVDESS ----------------------------------------------------------------------------------------------------


def test_ravdess_constants() -> None:
    assert dl.RAVDESS_URL.startswith("https://zenodo.org/records/1188976/files/")
    assert dl.RAVDESS_ZIP in dl.RAVDESS_URL
    assert len(ravdess_names()) == 1440 == len(set(ravdess_names()))


def test_download_ravdess_end_to_end(server, tmp_path: Path, ravdess_zip: bytes) -> None:
    url, state = server
    state.files["/ravdess.zip"] = ravdess_zip
    folder = dl.download_ravdess(tmp_path, url=f"{url}/ravdess.zip", progress=False,
                                 expected_size=len(ravdess_zip), md5=hashlib.md5(ravdess_zip).hexdigest())
    assert folder == tmp_path / "ravdess"
    records = load_ravdess(folder)
    assert len(records) == 1440
    assert len({r.speaker for r in records}) == 24
    assert not (tmp_path / dl.RAVDESS_ZIP).exists()
    # a second call finds the unpacked copy and asks the server nothing
    assert dl.download_ravdess(tmp_path, url=f"{url}/ravdess.zip", progress=False) == folder
    assert len(state.requests) == 1


def test_download_ravdess_without_md5_checks_crcs(server, tmp_path: Path, ravdess_zip: bytes) -> None:
    url, state = server
    state.files["/ravdess.zip"] = ravdess_zip
    folder = dl.download_ravdess(tmp_path, url=f"{url}/ravdess.zip", progress=False, expected_size=None, md5=None)
    assert len(load_ravdess(folder)) == 1440


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (ravdess_names()[:-1], "holds 1439 RAVDESS speech clips, expected 1440"),
        (ravdess_names() + ["extra/03-01-01-01-01-01-01.wav"], "occurs twice"),
        (ravdess_names()[:-1] + ["Actor_24/03-01-09-01-01-01-24.wav"], "unknown emotion code '09'"),
        (ravdess_names()[:-1] + ["Actor_24/03-02-01-01-01-01-24.wav"], "not audio-only speech"),
    ],
    ids=["too-few", "duplicate", "bad-name", "song"],
)
def test_download_ravdess_rejects_wrong_archive(server, tmp_path: Path, names: list[str], message: str) -> None:
    url, state = server
    state.files["/ravdess.zip"] = make_zip(names)
    with pytest.raises(DownloadError, match=message) as err:
        dl.download_ravdess(tmp_path, url=f"{url}/ravdess.zip", progress=False, expected_size=None, md5=None)
    assert "rerun to download it again" in str(err.value)
    assert not (tmp_path / dl.RAVDESS_ZIP).exists()
    assert (tmp_path / (dl.RAVDESS_ZIP + ".bad")).exists()
    assert not (tmp_path / "ravdess").exists()


def test_download_ravdess_md5_mismatch(server, tmp_path: Path, ravdess_zip: bytes) -> None:
    url, state = server
    state.files["/ravdess.zip"] = ravdess_zip
    with pytest.raises(DownloadError, match="does not match the published 0123"):
        dl.download_ravdess(tmp_path, url=f"{url}/ravdess.zip", progress=False, expected_size=None,
                            md5="0123456789abcdef0123456789abcdef")
    assert not (tmp_path / dl.RAVDESS_ZIP).exists()
    # the rerun downloads again instead of reusing the rejected file
    dl.download_ravdess(tmp_path, url=f"{url}/ravdess.zip", progress=False, expected_size=None,
                        md5=hashlib.md5(ravdess_zip).hexdigest())
    assert len(state.requests) == 2


def test_download_ravdess_refuses_a_zip_bomb(server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """2 MiB of zeros in a 2 kB member: refused from the listing, before a member is read or written."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(ravdess_names()[0], bytes(2 << 20))
    url, state = server
    state.files["/ravdess.zip"] = buf.getvalue()

    def no_reading(self: zipfile.ZipFile) -> None:
        raise AssertionError("a member of the bomb was read")

    monkeypatch.setattr(zipfile.ZipFile, "testzip", no_reading)
    with pytest.raises(DownloadError, match=r"member 'Actor_01/03-01-01-01-01-01-01.wav' unpacks to 2,097,152 "
                                            r"bytes, [\d,]+ times its compressed size \(at most 100\) \(a zip bomb"):
        dl.download_ravdess(tmp_path, url=f"{url}/ravdess.zip", progress=False, expected_size=None, md5=None)
    assert (tmp_path / (dl.RAVDESS_ZIP + ".bad")).exists()
    assert not (tmp_path / "ravdess").exists()


def test_download_ravdess_not_a_zip(server, tmp_path: Path) -> None:
    url, state = server
    state.files["/ravdess.zip"] = b"<html>maintenance</html>"
    with pytest.raises(DownloadError, match="not a readable zip archive"):
        dl.download_ravdess(tmp_path, url=f"{url}/ravdess.zip", progress=False, expected_size=None, md5=None)


# -- where data comes from ---------------------------------------------------------------------------------------


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Point VOXEMO_HOME at an empty folder, clear VOXEMO_DATA and work in an empty folder (no local copy next to
    it); returns the home folder."""
    monkeypatch.delenv("VOXEMO_DATA", raising=False)
    monkeypatch.setenv("VOXEMO_HOME", str(tmp_path / "home"))
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path / "home"


def test_resolve_finds_a_local_copy_before_downloading_and_says_how_to_use_one_offline(
        no_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(dest_dir: Path, *, progress: bool = True) -> Path:
        raise DownloadError("cannot download https://example.org/x.zip: Name or service not known; check the network")

    monkeypatch.setattr(dl, "download_ravdess", offline)
    with pytest.raises(DownloadError, match=r"or use a local copy: --data DIR .* or \$VOXEMO_DATA"):
        dl.resolve_ravdess(None, progress=False)
    shared = no_env.parent / "shared" / "data" / "ravdess" / "Actor_01"
    shared.mkdir(parents=True)
    (shared / "03-01-01-01-01-01-01.wav").write_bytes(b"RIFF")
    assert dl.resolve_ravdess(None, progress=False) == Path("..") / "shared" / "data" / "ravdess"


def test_default_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VOXEMO_HOME", str(tmp_path))
    assert dl.default_data_dir() == tmp_path / "data"
    monkeypatch.delenv("VOXEMO_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert dl.default_data_dir() == tmp_path / "xdg" / "voxemo" / "data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert dl.default_data_dir() == Path.home() / ".cache" / "voxemo" / "data"


def test_resolve_explicit_path(no_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXEMO_DATA", str(tmp_path / "elsewhere"))  # an explicit path wins over the env
    (tmp_path / "mine").mkdir()
    assert dl.resolve_ravdess(str(tmp_path / "mine")) == tmp_path / "mine"


def test_resolve_missing_explicit_path(no_env: Path, tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="nope: no such file or folder"):
        dl.resolve_ravdess(str(tmp_path / "nope"))


def test_resolve_env(no_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXEMO_DATA", str(tmp_path))
    assert dl.resolve_ravdess(None) == tmp_path
    monkeypatch.setenv("VOXEMO_DATA", str(tmp_path / "gone"))
    with pytest.raises(CorpusError, match=r"gone \(from \$VOXEMO_DATA\)"):
        dl.resolve_ravdess(None)


def test_resolve_earlier_download(no_env: Path) -> None:
    (no_env / "data" / "ravdess" / "Actor_01").mkdir(parents=True)
    assert dl.resolve_ravdess(None, download_if_missing=False) == no_env / "data" / "ravdess"


def test_resolve_nothing_without_download(no_env: Path) -> None:
    with pytest.raises(CorpusError, match="pass --data"):
        dl.resolve_ravdess(None, download_if_missing=False)


def test_resolve_downloads_when_missing(no_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []

    def fake_download(dest_dir: Path, *, progress: bool = True) -> Path:
        calls.append(Path(dest_dir))
        return Path(dest_dir) / "ravdess"

    monkeypatch.setattr(dl, "download_ravdess", fake_download)
    assert dl.resolve_ravdess(None, progress=False) == no_env / "data" / "ravdess"
    assert calls == [no_env / "data"]
