"""The web page end to end in headless Chromium (Debian's ``chromium`` + ``chromium-driver``, driven by Selenium).

The real service runs under uvicorn in a thread of the test process, wrapped in :class:`UploadRecorder`, which keeps
every body the page POSTs: the tests check on the server's side what the page uploaded (the file as the user chose
it, or a compact 16 kHz mono WAV of a recording). Chromium's fake microphone plays a 16-bit WAV (a real RAVDESS clip
when the corpus is present), so the page records through MediaRecorder exactly as with a person speaking. Every step
saves a screenshot, which is checked: the right size, not blank, and coloured where the probability bars are.

Set ``VOXEMO_WEB_SCREENSHOTS=DIR`` to keep the screenshots (the README's picture comes from such a run).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from conftest import ravdess_root, voiced
from voxemo.core.labels import EMOTIONS

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), "/usr/bin/chromedriver"
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or not Path(CHROMEDRIVER).exists(),
    reason="the browser test needs Debian's chromium and chromium-driver: apt-get install chromium chromium-driver",
)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (pip install -e '.[dev]')")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

ANGRY = Path("Actor_24") / "03-01-05-02-01-01-24.flac"  # a strong angry clip the shipped model gets right
SAD = Path("Actor_24") / "03-01-04-02-02-02-24.flac"  # after ANGRY and a pause, the shipped model's timeline: sad
WIDTH, HEIGHT = 1000, 1100
MAX_UPLOAD_MB = 5


@dataclass(frozen=True)
class Upload:
    """One POST as the server received it."""

    path: str
    content_type: str
    body: bytes

    def file(self) -> tuple[str, bytes]:
        """The multipart field ``file``: (filename, content)."""
        boundary = re.search(r"boundary=\"?([^\";]+)", self.content_type)
        assert boundary, self.content_type
        for part in self.body.split(b"--" + boundary.group(1).encode())[1:-1]:
            head, _, content = part.partition(b"\r\n\r\n")
            if b'name="file"' in head:
                name = re.search(rb'filename="([^"]*)"', head)
                return (name.group(1).decode() if name else ""), content[:-2]  # the part ends with CRLF
        raise AssertionError(f"no field 'file' in the upload to {self.path}")


class UploadRecorder:
    """ASGI wrapper around the app: keeps the body of every POST (what the page really sent)."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app
        self.uploads: list[Upload] = []

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = bytearray()

        async def keep() -> dict[str, Any]:
            message = await receive()
            if message["type"] == "http.request":
                body.extend(message.get("body", b""))
            return message

        try:
            await self.app(scope, keep, send)
        finally:
            content_type = dict(scope["headers"]).get(b"content-type", b"").decode("latin-1")
            self.uploads.append(Upload(scope["path"], content_type, bytes(body)))


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    keep = os.environ.get("VOXEMO_WEB_SCREENSHOTS")
    out = Path(keep) if keep else tmp_path_factory.mktemp("screenshots")
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="module")
def microphone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the fake microphone plays (in a loop): 16-bit mono WAV of a real clip, or a voice-like signal."""
    out = tmp_path_factory.mktemp("mic") / "mic.wav"
    root = ravdess_root()
    if root is not None and (root / ANGRY).exists():
        y, sr = sf.read(root / ANGRY, dtype="float32")
    else:
        sr = 16000
        y = np.concatenate([voiced(2.5, sr, np.random.default_rng(0)), np.zeros(sr // 2, np.float32)])
    sf.write(out, y, sr, subtype="PCM_16")
    return out


@pytest.fixture(scope="module")
def running() -> Iterator[tuple[str, UploadRecorder]]:
    """``voxemo serve``'s app (1 worker, uploads up to 5 MB, recordings up to 15 minutes) under uvicorn."""
    import uvicorn

    from voxemo.apps.service import create_app

    recorder = UploadRecorder(create_app(workers=1, queue=4, max_upload_mb=MAX_UPLOAD_MB, max_seconds=900))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(recorder, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", recorder
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


@pytest.fixture(scope="module")
def server(running: tuple[str, UploadRecorder]) -> str:
    return running[0]


@pytest.fixture
def uploads(running: tuple[str, UploadRecorder]) -> list[Upload]:
    """What the page POSTs during the test, in order."""
    running[1].uploads.clear()
    return running[1].uploads


@pytest.fixture(scope="module")
def browser(microphone: Path) -> Iterator[Any]:
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 f"--window-size={WIDTH},{HEIGHT}", "--use-fake-ui-for-media-stream",
                 "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={microphone}",
                 "--autoplay-policy=no-user-gesture-required"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)  # never Selenium Manager
    try:
        yield driver
    finally:
        driver.quit()


def open_page(browser: Any, server: str) -> None:
    browser.get(server + "/")
    WebDriverWait(browser, 20).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#bars .row")) == 8)


def wait_finished(browser: Any, timeout: float = 90) -> str:
    WebDriverWait(browser, timeout).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state")
                                          in ("done", "error"))
    return browser.find_element(By.TAG_NAME, "body").get_attribute("data-state")


def bar_widths(browser: Any) -> dict[str, float]:
    """Each emotion's bar width as a fraction of its track."""
    return browser.execute_script("""
        const out = {};
        for (const row of document.querySelectorAll('#bars .row')) {
          out[row.dataset.emotion] = row.querySelector('.bar').getBoundingClientRect().width
                                     / row.querySelector('.track').getBoundingClientRect().width;
        }
        return out;""")


def shown_result(browser: Any) -> dict[str, Any]:
    WebDriverWait(browser, 5).until(lambda d: abs(sum(bar_widths(d).values()) - 1) < 0.03)  # bar animation
    widths = bar_widths(browser)
    emotion = browser.find_element(By.ID, "emotion").text.strip().lower()
    assert emotion in EMOTIONS
    assert set(widths) == set(EMOTIONS)
    assert max(widths, key=widths.get) == emotion, widths  # the longest bar is the emotion shown
    return {"emotion": emotion, "widths": widths, "clip": browser.find_element(By.ID, "clip").text}


def shown_timeline(browser: Any) -> dict[str, Any]:
    """The timeline as shown: summary, legend, segments (label, tooltip, widths in px), ticks, and where it is."""
    return browser.execute_script("""
        const box = (el) => el.getBoundingClientRect().toJSON(), byId = (id) => document.getElementById(id);
        return {
          summary: byId('summary').textContent, info: byId('timeline-info').textContent,
          legend: [...document.querySelectorAll('#legend .key')].map((k) => k.dataset.emotion),
          legendColors: [...document.querySelectorAll('#legend .swatch')].map((k) => k.style.backgroundColor),
          segments: [...document.querySelectorAll('#segments .seg')].map((s) => {
            const label = s.querySelector('.seg-label');
            return { emotion: s.dataset.emotion, title: s.title, box: box(s), label: label ? label.textContent : '',
                     labelBox: label ? box(label) : null };
          }),
          ticks: [...document.querySelectorAll('#ticks .tick')].map((t) => ({ text: t.textContent, box: box(t) })),
          lane: box(byId('lane')), card: box(byId('timeline-card')), result: box(byId('result')),
        };""")


def check_timeline(t: dict[str, Any]) -> None:
    """Readable: every segment has a tooltip; labels name their segment and fit inside it; ticks in order, apart,
    inside the lane; the legend lists exactly the emotions drawn."""
    assert t["segments"], "no segment drawn"
    for seg in t["segments"]:
        assert seg["title"].startswith(seg["emotion"] + " ") and "%" in seg["title"]
        if seg["label"]:
            assert re.fullmatch(rf"{seg['emotion']}( \d+%)?", seg["label"]), seg["label"]
            assert seg["labelBox"]["left"] >= seg["box"]["left"] - 0.5
            assert seg["labelBox"]["right"] <= seg["box"]["right"] + 0.5
    assert sorted(t["legend"]) == sorted({seg["emotion"] for seg in t["segments"]})
    assert len(set(t["legendColors"])) == len(t["legend"])
    ticks = t["ticks"]
    assert len(ticks) >= 2 and ticks[0]["text"] in ("0 s", "0:00")
    for a, b in zip(ticks, ticks[1:]):
        assert a["box"]["right"] + 4 <= b["box"]["left"], (a, b)
    assert ticks[0]["box"]["left"] >= t["lane"]["left"] - 1 and ticks[-1]["box"]["right"] <= t["lane"]["right"] + 1


def check_screenshot(browser: Any, path: Path, *, bars: bool = True) -> None:
    """Saved, the window's size, not blank, and with coloured pixels where the probability bars are."""
    from PIL import Image

    assert browser.save_screenshot(str(path))
    img = np.asarray(Image.open(path).convert("RGB")).astype(np.float32)
    assert img.shape[:2] == (browser.execute_script("return window.innerHeight"),
                             browser.execute_script("return window.innerWidth"))
    background = img[2, 2]
    assert (np.abs(img - background).max(axis=2) > 30).mean() > 0.005  # text and buttons: not a blank page
    if bars:
        r = browser.execute_script("return document.getElementById('bars').getBoundingClientRect().toJSON()")
        region = img[int(r["top"]) : int(r["bottom"]), int(r["left"]) : int(r["right"])]
        saturation = region.max(axis=2) - region.min(axis=2)
        assert (saturation > 80).mean() > 0.01, "no coloured bars in the screenshot"


def test_record_from_the_microphone(browser: Any, server: str, shots: Path, uploads: list[Upload]) -> None:
    open_page(browser, server)
    check_screenshot(browser, shots / "0-empty.png", bars=False)
    browser.find_element(By.ID, "record").click()
    WebDriverWait(browser, 10).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state")
                                     == "recording")
    browser.implicitly_wait(0)
    import time

    time.sleep(5.0)  # longer than the model's 3 s window, so the page also asks for a timeline
    live = browser.find_element(By.ID, "live").text
    browser.find_element(By.ID, "record").click()
    assert wait_finished(browser) == "done", browser.find_element(By.ID, "error").text
    result = shown_result(browser)
    assert result["clip"].startswith("recording.wav")
    assert browser.find_element(By.ID, "timeline-card").is_displayed()
    assert browser.execute_script("""const c = document.getElementById('timeline');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n;""") > 1000  # segments drawn
    assert live.startswith("live:")  # the websocket streamed updates while recording
    check_screenshot(browser, shots / "1-recorded.png")
    # MediaRecorder's webm went up as a compact re-encoding: 16 kHz mono 16-bit WAV
    assert uploads and {u.path for u in uploads} <= {"/predict", "/timeline"}
    for u in uploads:
        name, content = u.file()
        info = sf.info(io.BytesIO(content))
        assert name == "recording.wav" and (info.format, info.subtype) == ("WAV", "PCM_16")
        assert (info.samplerate, info.channels) == (16000, 1) and 4.0 < info.duration < 7.0


@pytest.mark.data
def test_upload_a_real_clip(browser: Any, server: str, shots: Path, real_ravdess: Path,
                            uploads: list[Upload]) -> None:
    open_page(browser, server)
    file_input = browser.find_element(By.ID, "file")
    file_input.send_keys(str(real_ravdess / ANGRY))
    assert wait_finished(browser) == "done", browser.find_element(By.ID, "error").text
    result = shown_result(browser)
    assert result["emotion"] == "angry" and result["widths"]["angry"] > 0.8
    assert result["clip"].startswith("03-01-05-02-01-01-24.flac")  # the FLAC went up as it is, under its name
    assert [u.file() for u in uploads] == [(ANGRY.name, (real_ravdess / ANGRY).read_bytes())] * len(uploads)
    check_screenshot(browser, shots / "2-uploaded.png")


def test_upload_a_long_clip_draws_the_timeline(browser: Any, server: str, shots: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    sr = 16000
    parts = [np.concatenate([voiced(2.0, sr, rng, f0=f0), np.zeros(sr // 2, np.float32)]) for f0 in (110, 180, 240)]
    path = tmp_path / "long talk.flac"
    sf.write(path, np.concatenate(parts), sr)
    open_page(browser, server)
    browser.find_element(By.ID, "file").send_keys(str(path))
    assert wait_finished(browser) == "done", browser.find_element(By.ID, "error").text
    shown_result(browser)
    assert browser.find_element(By.ID, "timeline-card").is_displayed()
    assert "over 7.5 s" in browser.find_element(By.ID, "timeline-info").text
    t = shown_timeline(browser)
    check_timeline(t)
    assert t["card"]["bottom"] <= t["result"]["top"]  # longer than the model's window: the timeline comes first
    check_screenshot(browser, shots / "3-timeline.png")


def test_drop_a_file_on_the_page(browser: Any, server: str) -> None:
    """A file dropped on the drop zone (a WAV the page builds itself: a drop cannot come from Selenium's
    file input) is analysed like a chosen one."""
    open_page(browser, server)
    browser.execute_script("""
        const rate = 16000, y = new Float32Array(2 * rate);
        for (let i = 0; i < y.length; i++) {
          // a voice in syllables: its level comes and goes four times a second (a steady tone is not speech)
          const t = i / rate, f0 = 150 * (1 + 0.05 * Math.sin(2 * Math.PI * 5 * t));
          const level = Math.max(0, Math.sin(2 * Math.PI * 4 * t));
          for (let k = 1; k < 8; k++) y[i] += level * 0.3 * Math.sin(2 * Math.PI * k * f0 * t) / k / 2.6;
        }
        const dt = new DataTransfer();
        dt.items.add(new File([encodeWav(y, rate)], "dropped.wav", { type: "audio/wav" }));
        document.getElementById("drop").dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true }));
    """)
    assert wait_finished(browser) == "done", browser.find_element(By.ID, "error").text
    assert shown_result(browser)["clip"].startswith("dropped.wav · 2.0 s")


def test_garbage_upload_shows_the_servers_error(browser: Any, server: str, shots: Path, tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("these are meeting notes, not audio\n" * 50)
    open_page(browser, server)
    browser.find_element(By.ID, "file").send_keys(str(path))
    assert wait_finished(browser) == "error"
    message = browser.find_element(By.ID, "error").text
    assert message.startswith("415: notes.wav: not a readable audio file"), message
    assert browser.find_element(By.ID, "result").get_attribute("class") == "hidden"
    check_screenshot(browser, shots / "4-error.png", bars=False)
    from PIL import Image

    img = np.asarray(Image.open(shots / "4-error.png").convert("RGB")).astype(int)
    r = browser.execute_script("return document.getElementById('error').getBoundingClientRect().toJSON()")
    region = img[int(r["top"]) : int(r["bottom"]), int(r["left"]) : int(r["right"])]
    assert ((region[..., 0] - region[..., 1]) > 60).mean() > 0.01  # the message is there, in red


def synthetic_talk(seconds: float, sr: int, seed: int = 0, channels: int = 1) -> np.ndarray:
    """Voice-like stretches of 4 s at changing pitch, each followed by 1 s of silence."""
    rng = np.random.default_rng(seed)
    f0s = np.tile([110, 150, 200, 240, 110], int(seconds // 25) + 1)
    y = np.concatenate([np.concatenate([voiced(4.0, sr, rng, f0=f0), np.zeros(sr, np.float32)]) for f0 in f0s])
    y = y[: int(seconds * sr)]
    return np.stack([y] * channels, axis=1) if channels > 1 else y


@pytest.mark.parametrize("fmt", ["FLAC", "OGG"])
def test_a_chosen_file_goes_up_as_it_is(browser: Any, server: str, tmp_path: Path, uploads: list[Upload],
                                        fmt: str) -> None:
    """A format the service reads is uploaded byte for byte under its own name, not decoded and re-encoded."""
    path = tmp_path / f"talk 1.{fmt.lower()}"
    sf.write(path, synthetic_talk(6.0, 44100, channels=2), 44100, format=fmt)
    open_page(browser, server)
    browser.find_element(By.ID, "file").send_keys(str(path))
    assert wait_finished(browser) == "done", browser.find_element(By.ID, "error").text
    assert "/timeline" in [u.path for u in uploads]
    for u in uploads:
        assert u.file() == (path.name, path.read_bytes()), f"{u.path} received something else than {path.name}"
    assert browser.find_element(By.ID, "clip").text.startswith(f"{path.name} · 6.0 s")


@pytest.mark.data
def test_several_emotions_show_the_timeline_first(browser: Any, server: str, shots: Path, tmp_path: Path,
                                                  real_ravdess: Path, uploads: list[Upload]) -> None:
    """An angry clip, a pause, a sad clip: the result is the timeline with a summary by duration, a legend and a
    label on each segment, above the share of each emotion; not one low-confidence label for the whole."""
    angry, sr = sf.read(real_ravdess / ANGRY, dtype="float32")
    sad, sr_sad = sf.read(real_ravdess / SAD, dtype="float32")
    assert sr == sr_sad
    path = tmp_path / "angry then sad.flac"
    sf.write(path, np.concatenate([angry, np.zeros(sr, np.float32), sad]), sr)
    open_page(browser, server)
    browser.find_element(By.ID, "file").send_keys(str(path))
    assert wait_finished(browser) == "done", browser.find_element(By.ID, "error").text
    assert all(u.file() == (path.name, path.read_bytes()) for u in uploads) and uploads
    t = shown_timeline(browser)
    check_timeline(t)
    assert t["card"]["bottom"] <= t["result"]["top"]  # the timeline is the result shown first
    assert sorted(t["legend"]) == ["angry", "sad"]
    assert re.fullmatch(r"(angry|sad) \d+% of the speech, (angry|sad) \d+%", t["summary"]), t["summary"]
    assert sum(int(p) for p in re.findall(r"(\d+)%", t["summary"])) in (99, 100, 101)
    labels = [seg["label"] for seg in t["segments"]]
    assert any(re.fullmatch(r"angry \d+%", x) for x in labels) and any(re.fullmatch(r"sad \d+%", x) for x in labels)
    assert "segments over 10.0 s" in t["info"]
    assert [x["text"] for x in t["ticks"]] == [f"{i} s" for i in range(11)]
    result = shown_result(browser)  # below: each emotion's share of the speech
    assert result["widths"]["angry"] > 0.3 and result["widths"]["sad"] > 0.3
    assert browser.find_element(By.ID, "result-title").text == "Share of the speech, by emotion"
    check_screenshot(browser, shots / "5-several-emotions.png")
    canvas = browser.find_element(By.ID, "timeline").screenshot_as_png
    from PIL import Image

    lane = np.asarray(Image.open(io.BytesIO(canvas)).convert("RGB")).astype(int)
    for color in ("#fa5252", "#5c7cfa"):  # angry red and sad blue are painted
        rgb = np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(lane - rgb).max(axis=2) < 12).mean() > 0.1, color


def test_a_long_compressed_recording_is_accepted(browser: Any, server: str, shots: Path, tmp_path: Path,
                                                 uploads: list[Upload]) -> None:
    """Ten minutes of OGG/Vorbis (about 2 MB) go up as they are; as 48 kHz WAV (57.6 MB), or even as the compact
    16 kHz mono WAV (19.2 MB), they would be over the 5 MB limit."""
    sr, seconds = 16000, 600
    path = tmp_path / "meeting.ogg"
    with sf.SoundFile(path, "w", sr, 1, format="OGG", subtype="VORBIS") as f:
        y = synthetic_talk(seconds, sr)
        for i in range(0, len(y), sr):  # block by block: libvorbis can crash on one very long write
            f.write(y[i : i + sr])
    size = path.stat().st_size
    assert size < MAX_UPLOAD_MB * 2**20 / 2 and seconds * UPLOAD_WAV_BYTES_PER_SECOND > MAX_UPLOAD_MB * 2**20
    open_page(browser, server)
    browser.find_element(By.ID, "file").send_keys(str(path))
    assert wait_finished(browser, 120) == "done", browser.find_element(By.ID, "error").text
    assert uploads and all(u.file() == (path.name, path.read_bytes()) for u in uploads)
    t = shown_timeline(browser)
    check_timeline(t)
    assert t["info"].startswith(f"{len(t['segments'])} segments over 10:00 · ")
    assert len(t["segments"]) > 20
    ticks = [x["text"] for x in t["ticks"]]
    assert all(re.fullmatch(r"\d+:\d\d", x) for x in ticks) and ticks[-1] == "10:00", ticks
    shown_result(browser)  # (waits for the bars' animation)
    check_screenshot(browser, shots / "6-ten-minutes.png")


#: Bytes per second of a 48 kHz mono 16-bit WAV.
UPLOAD_WAV_BYTES_PER_SECOND = 48000 * 2


def test_an_hour_of_timeline_stays_readable(browser: Any, server: str, shots: Path) -> None:
    """A timeline of one hour (drawn from a made-up answer): labels only where they fit, h:mm:ss ticks apart."""
    open_page(browser, server)
    rng = np.random.default_rng(3)
    emotions = ["neutral", "calm", "happy", "sad", "angry"]
    segments, start = [], 0.0
    while start < 3590:
        end = min(3600.0, start + float(rng.choice([1.5, 4, 9, 60, 240])))
        p = float(rng.uniform(0.4, 0.95))
        segments.append({"start": start, "end": end, "emotion": emotions[int(rng.integers(5))], "confidence": p,
                         "probabilities": {}})
        start = end + float(rng.choice([0, 0, 2]))
    elapsed = browser.execute_script("""
        const t0 = performance.now();
        showTimeline({ path: "hour.ogg", duration: 3600, segments: arguments[0], windows: [] });
        return performance.now() - t0;""", segments)
    assert elapsed < 2000
    t = shown_timeline(browser)
    check_timeline(t)
    assert len(t["segments"]) == len(segments) and " over 1:00:00 · " in t["info"]
    assert 0 < sum(bool(seg["label"]) for seg in t["segments"]) < len(segments)
    ticks = [x["text"] for x in t["ticks"]]
    assert ticks[-1] == "1:00:00" and 4 <= len(ticks) <= 16, ticks
    assert all(re.fullmatch(r"\d+:\d\d(:\d\d)?", x) for x in ticks)
    shown_result(browser)  # (waits for the bars' animation)
    check_screenshot(browser, shots / "7-an-hour.png")


def test_a_file_over_the_upload_limit(browser: Any, server: str, tmp_path: Path, uploads: list[Upload]) -> None:
    """Over the limit in /health: a decodable file goes up as a compact 16 kHz mono WAV, with one line saying so;
    one that cannot be decoded here is not sent, and one line says why."""
    big = tmp_path / "studio take.wav"
    sf.write(big, synthetic_talk(36.0, 48000, channels=2), 48000, subtype="PCM_16")
    assert big.stat().st_size > MAX_UPLOAD_MB * 2**20
    open_page(browser, server)
    browser.find_element(By.ID, "file").send_keys(str(big))
    assert wait_finished(browser) == "done", browser.find_element(By.ID, "error").text
    status = browser.find_element(By.ID, "status").text
    assert re.fullmatch(r"studio take\.wav is 6\.\d MB, over this server's 5 MB upload limit: sending a 16 kHz mono "
                        r"copy \(1\.\d MB\)\.", status), status
    assert uploads
    for u in uploads:
        name, content = u.file()
        info = sf.info(io.BytesIO(content))
        assert name == "studio take.wav" and (info.samplerate, info.channels) == (16000, 1)
    uploads.clear()
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(np.random.default_rng(0).bytes(6 * 2**20))
    browser.find_element(By.ID, "file").send_keys(str(junk))
    assert wait_finished(browser) == "error"
    message = browser.find_element(By.ID, "error").text
    assert message.startswith("junk.mp3 is 6.0 MB, larger than this server's upload limit of 5 MB"), message
    assert "\n" not in message and not uploads


def test_no_speech_is_said_so(browser: Any, server: str, shots: Path, tmp_path: Path) -> None:
    path = tmp_path / "quiet.flac"
    sf.write(path, np.zeros(4 * 16000, np.float32), 16000)
    open_page(browser, server)
    browser.find_element(By.ID, "file").send_keys(str(path))
    assert wait_finished(browser) == "done", browser.find_element(By.ID, "error").text
    assert browser.find_element(By.ID, "status").text == "No speech found in quiet.flac."
    assert browser.find_element(By.ID, "summary").text == "No speech found"
    assert not browser.find_element(By.ID, "result").is_displayed()
    assert not browser.find_elements(By.CSS_SELECTOR, "#segments .seg")
    check_screenshot(browser, shots / "8-no-speech.png", bars=False)
