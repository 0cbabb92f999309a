"""The HTTP service through FastAPI's TestClient: results, limits, error statuses and the worker-pool gate."""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from conftest import voiced
from voxemo.apps.cli import build_parser, main
from voxemo.apps.service import ServiceConfig, client_name, create_app
from voxemo.core.errors import ConfigError
from voxemo.core.labels import EMOTIONS
from voxemo.inference.loading import load_model

SR = 16000


@pytest.fixture(scope="module")
def model() -> Any:
    return load_model()


@pytest.fixture(scope="module")
def client(model: Any) -> Iterator[TestClient]:
    with TestClient(create_app(model, max_upload_mb=1, max_seconds=20)) as c:
        yield c


def wav_bytes(y: np.ndarray, sr: int = SR, fmt: str = "WAV") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, y, sr, format=fmt)
    return buf.getvalue()


def speech(seconds: float = 1.5, sr: int = SR) -> np.ndarray:
    return voiced(seconds, sr, np.random.default_rng(7))


def assert_clean_error(r: Any, status: int) -> str:
    """A one-line JSON error without server paths or traceback text."""
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    msg = body["error"]
    assert "\n" not in msg and "Traceback" not in r.text and "voxemo-upload" not in r.text and "/tmp" not in r.text
    return msg


def test_health_reports_labels_window_and_limits(client: TestClient) -> None:
    h = client.get("/health").json()
    assert h["status"] == "ok"
    assert h["classes"] == list(EMOTIONS)
    assert h["window_seconds"] == 3.0  # the timeline's window: the default model reads up to 6 s, asked 3 s at a time
    assert h["limits"] == {"max_upload_mb": 1, "max_seconds": 20, "workers": 2, "queue": 16}


def test_predict_returns_what_predict_json_prints(client: TestClient, make_wav: Any,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = make_wav("clip.wav", speech(), SR)
    r = client.post("/predict", files={"file": ("clip.wav", path.read_bytes(), "audio/wav")})
    assert r.status_code == 200, r.text
    assert main(["predict", "--json", str(path)]) == 0
    expected = json.loads(capsys.readouterr().out)
    assert r.json() == {**expected, "path": "clip.wav"}
    assert set(r.json()["probabilities"]) == set(EMOTIONS)
    assert abs(sum(r.json()["probabilities"].values()) - 1) < 1e-3


def test_predict_flac_and_stereo_48k(client: TestClient) -> None:
    y = np.stack([speech(2.0, 48000), 0.5 * speech(2.0, 48000)], axis=1)
    r = client.post("/predict", files={"file": ("stereo.flac", wav_bytes(y, 48000, "FLAC"), "audio/flac")})
    assert r.status_code == 200, r.text
    assert r.json()["emotion"] in EMOTIONS and r.json()["path"] == "stereo.flac"


def test_torch_backend_serves_the_same_predictions(client: TestClient) -> None:
    """A CNN model's service runs its model.onnx with ONNX Runtime; ``--backend torch`` gives the same (the default
    model runs in ONNX Runtime only)."""
    from voxemo.inference.loading import default_model_dir

    upload = {"file": ("clip.wav", wav_bytes(speech(4.0)), "audio/wav")}
    with TestClient(create_app(default_model_dir("fast"), backend="torch")) as torch_client:
        got = torch_client.post("/predict", files=upload).json()
        assert torch_client.get("/health").json()["backend"] == "torch"
    assert client.get("/health").json()["backend"] == "onnx"
    with TestClient(create_app(default_model_dir("fast"))) as onnx_client:
        assert onnx_client.get("/health").json()["backend"] == "onnx"
        expected = onnx_client.post("/predict", files=upload).json()
    assert got["emotion"] == expected["emotion"]
    for c in EMOTIONS:
        assert got["probabilities"][c] == pytest.approx(expected["probabilities"][c], abs=2e-3)


def test_uploaded_name_loses_its_folders(client: TestClient) -> None:
    r = client.post("/predict", files={"file": ("../../etc/clip.wav", wav_bytes(speech()), "audio/wav")})
    assert r.status_code == 200 and r.json()["path"] == "clip.wav"
    assert client_name("C:\\Users\\me\\a.wav") == "a.wav"
    assert client_name(None) == client_name("") == "upload"


@pytest.mark.data
def test_predict_real_ravdess_clip_matches_the_cli(client: TestClient, real_ravdess: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    clip = real_ravdess / "Actor_24" / "03-01-05-02-01-01-24.flac"
    r = client.post("/predict", files={"file": (clip.name, clip.read_bytes(), "audio/flac")})
    assert r.status_code == 200, r.text
    main(["predict", "--json", str(clip)])
    assert r.json() == {**json.loads(capsys.readouterr().out), "path": clip.name}
    assert r.json()["emotion"] == "angry"  # a strong angry clip the shipped model gets right


@pytest.mark.parametrize("payload, name, status, words", [
    (b"these are meeting notes, not audio\n" * 20, "notes.wav", 415, "not a readable audio file"),
    (np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(), "noise.flac", 415, "not a readable"),
    (b"", "empty.wav", 422, "empty upload"),
    (wav_bytes(np.zeros(SR, np.float32)), "silence.wav", 422, "silent"),
    (wav_bytes(speech(0.1)), "short.wav", 422, "too short"),
    (wav_bytes(speech(1.5))[:60], "cut.wav", 422, "too short"),
], ids=["text", "noise", "empty", "silence", "short", "truncated"])
def test_bad_uploads_get_a_clean_4xx(client: TestClient, payload: bytes, name: str, status: int, words: str) -> None:
    r = client.post("/predict", files={"file": (name, payload, "application/octet-stream")})
    msg = assert_clean_error(r, status)
    assert msg.startswith(name) and words in msg


def test_too_long_audio_is_refused_before_decoding(client: TestClient) -> None:
    r = client.post("/predict", files={"file": ("long.wav", wav_bytes(np.zeros(25 * 8000, np.int16), 8000), "")})
    msg = assert_clean_error(r, 422)
    assert "too long (25.0 s > limit 20 s)" in msg


def test_oversize_upload_gets_413_from_content_length(client: TestClient) -> None:
    r = client.post("/predict", files={"file": ("big.wav", b"\0" * (2 * 2**20), "audio/wav")})
    assert "upload too large (limit 1 MB)" in assert_clean_error(r, 413)


def chunked_upload(megabytes: float) -> Iterator[bytes]:
    """A multipart body sent as a generator: no Content-Length, so only counting the bytes can catch it."""
    yield b'--B\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
    for _ in range(int(megabytes * 16)):
        yield b"\0" * 65536
    yield b"\r\n--B--\r\n"


def test_oversize_upload_gets_413_while_streaming(client: TestClient) -> None:
    multipart = {"content-type": "multipart/form-data; boundary=B"}
    r = client.post("/predict", content=chunked_upload(6), headers=multipart)
    assert "content-length" not in r.request.headers
    assert "upload too large" in assert_clean_error(r, 413)
    # just under the limit passes the gate and fails later, as the not-audio body it is
    r = client.post("/predict", content=chunked_upload(0.9), headers=multipart)
    assert_clean_error(r, 415)


def test_missing_field_and_wrong_method(client: TestClient) -> None:
    r = client.post("/predict", data={"audio": "x"})
    assert "file" in assert_clean_error(r, 422)
    assert client.get("/predict").status_code == 405
    assert "error" in client.get("/nothing-here").json()


def test_no_endpoint_reads_server_side_paths(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert set(spec["paths"]) == {"/health", "/predict", "/timeline"}
    for path, ops in spec["paths"].items():
        for op in ops.values():
            assert not op.get("parameters"), f"{path} takes query/path parameters"
    r = client.post("/predict?path=/etc/passwd", data={"path": "/etc/passwd"})
    assert r.status_code == 422 and "passwd" not in r.text


def test_page_and_docs_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for needle in ('id="record"', 'id="file"', 'id="bars"', 'id="timeline"', "MediaRecorder", "decodeAudioData",
                   "/predict", "/timeline"):
        assert needle in page.text
    assert "http://" not in page.text.replace("http://www.w3.org", "")  # nothing fetched from elsewhere
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger-ui-bundle.js" in docs.text
    # the docs page loads its script and style from this server, not from a CDN, so it works offline
    assert "cdn." not in docs.text and "https://" not in docs.text
    for asset in re.findall(r'(?:src|href)="(/[^"]+\.(?:js|css))"', docs.text):
        assert client.get(asset).status_code == 200, asset
    assert len(re.findall(r'(?:src|href)="(/[^"]+\.(?:js|css))"', docs.text)) >= 2


class BlockingModel:
    """Stands in for a classifier whose predictions take until ``release`` is set (to fill the pool)."""

    def __init__(self) -> None:
        self.classes_ = np.asarray(EMOTIONS)
        self.config = load_model().config
        self.started = threading.Semaphore(0)
        self.release = threading.Event()

    def predict_proba(self, y: np.ndarray, sr: int, **_: object) -> np.ndarray:  # the service's warm-up
        return np.full(len(self.classes_), 1 / len(self.classes_))

    def predict_file(self, path: Path) -> dict[str, Any]:
        self.started.release()
        assert self.release.wait(30)
        return {"path": str(path), "emotion": "calm", "confidence": 1.0, "probabilities": {"calm": 1.0}}


def test_full_queue_answers_503_and_recovers() -> None:
    slow = BlockingModel()
    upload = {"file": ("a.wav", wav_bytes(speech()), "audio/wav")}
    with TestClient(create_app(slow, workers=1, queue=1)) as c:
        results: list[int] = []
        threads = [threading.Thread(target=lambda: results.append(c.post("/predict", files=upload).status_code))
                   for _ in range(2)]
        threads[0].start()
        assert slow.started.acquire(timeout=30)  # the only worker is busy
        threads[1].start()  # admitted to the queue
        gate = _gate(c.app)
        for _ in range(300):
            if gate.in_flight == 2:
                break
            threading.Event().wait(0.01)
        assert gate.in_flight == 2
        r = c.post("/predict", files=upload)
        assert "server busy" in assert_clean_error(r, 503)
        assert r.headers["retry-after"] == "1"
        assert c.get("/health").status_code == 200  # non-upload endpoints are not gated
        slow.release.set()
        for t in threads:
            t.join(30)
        assert results == [200, 200]
        assert c.post("/predict", files=upload).status_code == 200
        assert gate.in_flight == 0


def _gate(app: Any) -> Any:
    node = app.middleware_stack
    while not hasattr(node, "in_flight"):
        node = node.app
    return node


def test_service_config_validates() -> None:
    with pytest.raises(ConfigError, match="workers"):
        ServiceConfig(workers=0)
    with pytest.raises(ConfigError, match="max_upload_mb"):
        ServiceConfig(max_upload_mb=0)
    assert ServiceConfig(max_upload_mb=1.5).max_upload_bytes == int(1.5 * 2**20)


def test_serve_command_defaults_to_localhost() -> None:
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.backend, args.workers) == ("127.0.0.1", 8000, "auto", 2)
    args = build_parser().parse_args(["serve", "--port", "9000", "--max-upload-mb", "5", "--backend", "onnx"])
    assert (args.port, args.max_upload_mb, args.backend) == (9000, 5.0, "onnx")


def talk(seconds: float, sr: int = SR) -> np.ndarray:
    """Utterances of ~2 s separated by 0.7 s pauses, ``seconds`` long."""
    rng = np.random.default_rng(3)
    parts, n = [], 0
    while n < seconds * sr:
        parts += [voiced(2.0, sr, rng, f0=120 + 40 * len(parts) % 120), np.zeros(int(0.7 * sr), np.float32)]
        n += int(2.7 * sr)
    return np.concatenate(parts)[: int(seconds * sr)]


def test_timeline_of_an_upload(client: TestClient, model: Any, make_wav: Any) -> None:
    from voxemo.inference.timeline import timeline

    path = make_wav("talk.wav", talk(9.0), SR)
    r = client.post("/timeline", files={"file": ("talk.wav", path.read_bytes(), "audio/wav")})
    assert r.status_code == 200, r.text
    t = r.json()
    assert t == {**json.loads(json.dumps(timeline(path, model).to_dict())), "path": "talk.wav"}
    assert t["duration"] == pytest.approx(9.0, abs=0.01)
    assert t["segments"] and all(s["emotion"] in EMOTIONS for s in t["segments"] if s.get("emotion"))
    assert_clean_error(client.post("/timeline", files={"file": ("x.wav", b"RIFF nonsense", "")}), 415)
    long = wav_bytes(np.zeros(21 * 8000, np.int16), 8000)
    assert "too long" in assert_clean_error(client.post("/timeline", files={"file": ("l.wav", long, "")}), 422)


def listen(client: TestClient, hello: dict[str, Any], chunks: list[bytes], end: bool = True) -> list[dict[str, Any]]:
    out = []
    with client.websocket_connect("/listen") as ws:
        ws.send_text(json.dumps(hello))
        for c in chunks:
            ws.send_bytes(c)
        if end:
            ws.send_text(json.dumps({"end": True}))
        while True:
            msg = ws.receive_json()
            out.append(msg)
            if "done" in msg or "error" in msg:
                break
    return out


def test_listen_websocket_streams_the_same_updates_as_emotion_stream(client: TestClient, model: Any) -> None:
    from voxemo.inference.stream import EmotionStream

    y = talk(7.0)
    chunks = [y[i : i + 4000] for i in range(0, len(y), 4000)]
    got = listen(client, {"sample_rate": SR}, [c.astype("<f4").tobytes() for c in chunks])
    assert got[-1] == {"done": True}
    stream = EmotionStream(model, SR)
    expected = [u for c in chunks for u in stream.feed(c)] + stream.flush()
    assert got[:-1] == json.loads(json.dumps([u.to_dict() for u in expected]))
    assert any(u["speech"] and u["emotion"] in EMOTIONS for u in got[:-1])
    assert got[-2]["end"] == pytest.approx(7.0, abs=0.01)
    # 16-bit PCM gives the same emotions
    s16 = [(np.clip(c, -1, 1) * 32767).astype("<i2").tobytes() for c in chunks]
    got16 = listen(client, {"sample_rate": SR, "format": "s16"}, s16)
    assert [u.get("emotion") for u in got16] == [u.get("emotion") for u in got]


@pytest.mark.parametrize("hello, words", [
    ({"rate": 16000}, "bad first message"),
    ({"sample_rate": 5}, "sample_rate"),
    ({"sample_rate": 16000, "format": "mp3"}, "format"),
])
def test_listen_rejects_bad_sessions(client: TestClient, hello: dict[str, Any], words: str) -> None:
    got = listen(client, hello, [], end=False)
    assert len(got) == 1 and words in got[0]["error"]


def test_listen_enforces_the_session_length(client: TestClient) -> None:
    chunk = np.zeros(8 * SR, "<f4").tobytes()  # 8 s per chunk, 20 s allowed
    got = listen(client, {"sample_rate": SR}, [chunk] * 3, end=False)
    assert "longer than the limit of 20 s" in got[-1]["error"]
    nan = np.full(100, np.nan, "<f4").tobytes()
    assert "non-finite" in listen(client, {"sample_rate": SR}, [nan], end=False)[-1]["error"]


def test_listen_refuses_torn_samples_and_too_many_sessions(model: Any) -> None:
    with TestClient(create_app(model, workers=1, queue=0)) as c:
        assert "not whole f32 samples" in listen(c, {"sample_rate": SR}, [b"\0" * 6], end=False)[-1]["error"]
        with c.websocket_connect("/listen") as first:
            first.send_text(json.dumps({"sample_rate": SR}))
            first.send_bytes(np.zeros(1600, "<f4").tobytes())
            busy = listen(c, {"sample_rate": SR}, [], end=False)
            assert "server busy" in busy[0]["error"]
            first.send_text(json.dumps({"end": True}))
            while "done" not in first.receive_json():
                pass
        assert listen(c, {"sample_rate": SR}, [np.zeros(1600, "<f4").tobytes()])[-1] == {"done": True}


@pytest.mark.parametrize("endpoint", ["/predict", "/timeline"])
def test_two_files_in_one_upload_are_refused(client: TestClient, endpoint: str) -> None:
    """Several files in the field 'file' get a one-line 422 instead of one of them being used silently."""
    clip = wav_bytes(speech())
    r = client.post(endpoint, files=[("file", ("a.wav", clip, "audio/wav")), ("file", ("b.wav", clip, "audio/wav"))])
    msg = assert_clean_error(r, 422)
    assert "2 files sent" in msg and "one file per request" in msg


@pytest.mark.parametrize("endpoint", ["/predict", "/timeline"])
def test_a_decompression_bomb_is_refused_from_its_header(client: TestClient, endpoint: str) -> None:
    """A small FLAC that declares 8 s of 8 channels at 96 kHz (6.1 M samples, within the 20 s limit) decodes to
    more than 20 s of 48 kHz stereo: 413 from the header, before anything is decoded."""
    bomb = wav_bytes(np.zeros((8 * 96000, 8), np.int16), 96000, "FLAC")
    assert len(bomb) < 200_000  # well under the 1 MiB upload limit
    msg = assert_clean_error(client.post(endpoint, files={"file": ("bomb.flac", bomb, "audio/flac")}), 413)
    assert "bomb.flac: decodes to too much audio" in msg and "6,144,000 samples" in msg


def test_a_header_with_no_samples_is_an_empty_stream_not_a_bomb(client: TestClient) -> None:
    """0 frames is a 422 naming the cause, not the 413 for too much audio."""
    msg = assert_clean_error(client.post("/predict", files={"file": ("zero.wav", wav_bytes(np.zeros(0, np.int16)),
                                                                   "audio/wav")}), 422)
    assert msg == "zero.wav: contains no audio samples (truncated or empty stream)"
