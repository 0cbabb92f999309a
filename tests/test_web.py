"""The web page end to end in headless Chromium (Debian's ``chromium`` + ``chromium-driver``, driven by Selenium).

The real service runs under uvicorn in a subprocess. Chromium's fake microphone plays a 16-bit WAV (a real
RAVDESS clip when the corpus is present), so the page records through MediaRecorder exactly as with a person
speaking. Every step saves a screenshot, which is checked: the right size, not blank, and coloured where the
probability bars are.

Set ``VOXEMO_WEB_SCREENSHOTS=DIR`` to keep the screenshots (the README's picture comes from such a run).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
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
WIDTH, HEIGHT = 1000, 1100


def _loadtest() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "loadtest.py"
    spec = importlib.util.spec_from_file_location("voxemo_loadtest", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
def server() -> Iterator[str]:
    with _loadtest().running_server("--workers", "1", "--queue", "4", "--max-upload-mb", "5") as url:
        yield url


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
    assert max(widths, key=widths.get) == emotion  # the longest bar is the emotion shown
    return {"emotion": emotion, "widths": widths, "clip": browser.find_element(By.ID, "clip").text}


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


def test_record_from_the_microphone(browser: Any, server: str, shots: Path) -> None:
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


@pytest.mark.data
def test_upload_a_real_clip(browser: Any, server: str, shots: Path, real_ravdess: Path) -> None:
    open_page(browser, server)
    file_input = browser.find_element(By.ID, "file")
    file_input.send_keys(str(real_ravdess / ANGRY))
    assert wait_finished(browser) == "done", browser.find_element(By.ID, "error").text
    result = shown_result(browser)
    assert result["emotion"] == "angry" and result["widths"]["angry"] > 0.8
    assert result["clip"].startswith("03-01-05-02-01-01-24.wav")
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
    check_screenshot(browser, shots / "3-timeline.png")


def test_drop_a_file_on_the_page(browser: Any, server: str) -> None:
    """A file dropped on the drop zone (a WAV the page builds itself: a drop cannot come from Selenium's
    file input) is analysed like a chosen one."""
    open_page(browser, server)
    browser.execute_script("""
        const rate = 16000, y = new Float32Array(2 * rate);
        for (let i = 0; i < y.length; i++) {
          const t = i / rate, f0 = 150 * (1 + 0.05 * Math.sin(2 * Math.PI * 5 * t));
          for (let k = 1; k < 8; k++) y[i] += 0.3 * Math.sin(2 * Math.PI * k * f0 * t) / k / 2.6;
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
