"""Live emotion from a microphone: sounddevice's input callback -> queue ->
:class:`~voxemo.inference.stream.EmotionStream`.

sounddevice (PortAudio) is imported only here, when listening starts, so the rest of voxemo works on machines
without audio hardware or without the PortAudio library (Debian/Ubuntu: ``apt-get install libportaudio2``).
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from voxemo.core.errors import AudioError, first_line
from voxemo.core.extras import MissingExtraError, missing_extra_message
from voxemo.dsp.vad import VadConfig
from voxemo.inference.stream import EmotionStream, Update

if TYPE_CHECKING:
    from voxemo.inference.classifier import Classifier

log = logging.getLogger(__name__)


#: Seconds of audio per callback block: short enough for a responsive stream, long enough to keep the
#: callback thread idle most of the time.
BLOCK_SECONDS = 0.1

#: Seconds without a block from the device after which listening gives up.
STALL_SECONDS = 5.0


def listen(model: Classifier, on_update: Callable[[Update], Any], *, device: int | str | None = None,
           window: float | None = None, hop: float | None = None, seconds: float | None = None,
           vad: VadConfig | None = None, adapt: float = 0.0) -> float:
    """Classify the microphone until ``seconds`` of audio have been heard, or Ctrl-C.

    Parameters
    ----------
    model : Classifier
        A loaded model.
    on_update : callable
        Called with each update of the stream (see :class:`~voxemo.inference.stream.EmotionStream`), from this thread.
    device : int or str, optional
        sounddevice input device (index or name substring); default: the system's default input.
    window, hop : float, optional
        Window and hop in seconds, as for :class:`~voxemo.inference.stream.EmotionStream`.
    seconds : float, optional
        Stop after this much audio; default: until interrupted.

    Returns
    -------
    float
        Seconds of audio heard. Ctrl-C ends listening normally: the last utterance is still reported.

    Raises
    ------
    AudioError
        PortAudio is missing, there is no usable input device, or the device stops delivering audio.
    """
    sd = _sounddevice()
    try:
        info = sd.query_devices(device, "input")
        rate = int(info["default_samplerate"])
    except (ValueError, sd.PortAudioError) as exc:
        which = "" if device is None else f" {device!r}"
        raise AudioError(f"no usable audio input device{which} ({first_line(exc)})") from None
    stream = EmotionStream(model, rate, window=window, hop=hop, vad=vad, adapt=adapt)
    blocks: queue.Queue[np.ndarray] = queue.Queue()

    def callback(indata: np.ndarray, frames: int, time: Any, status: Any) -> None:
        if status:
            log.debug("input status: %s", status)
        blocks.put(indata.copy())

    try:
        mic = sd.InputStream(device=device, channels=1, samplerate=rate, dtype="float32",
                             blocksize=max(1, int(rate * BLOCK_SECONDS)), callback=callback)
    except (ValueError, sd.PortAudioError) as exc:
        raise AudioError(f"cannot open audio input {info.get('name', device)!r} ({first_line(exc)})") from None
    try:
        with mic:
            while seconds is None or stream.position < seconds:
                try:
                    block = blocks.get(timeout=STALL_SECONDS)
                except queue.Empty:
                    raise AudioError(f"audio input {info.get('name', device)!r} delivered nothing for "
                                     f"{STALL_SECONDS:g} s") from None
                for update in stream.feed(block):
                    on_update(update)
    except KeyboardInterrupt:
        pass
    for update in stream.flush():
        on_update(update)
    return stream.position


def format_update(update: Update) -> str:
    """One line for a terminal: ``"  12.3 -   15.3 s  angry      0.87"`` or ``"... (no speech)"``."""
    span = f"{update.start:7.1f} - {update.end:7.1f} s"
    if not update.speech:
        return f"{span}  (no speech)"
    return f"{span}  {update.emotion:<10} {update.confidence:.2f}"


def _sounddevice() -> Any:
    try:
        import sounddevice
    except ModuleNotFoundError as exc:
        missing = missing_extra_message(exc.name or "sounddevice", "listening") or first_line(exc)
        raise MissingExtraError(f"cannot use the microphone: {missing}") from None
    except (OSError, ImportError) as exc:  # sounddevice raises OSError when the PortAudio library is missing
        raise AudioError(f"cannot use the microphone: {first_line(exc)} (on Debian/Ubuntu: apt-get install "
                         "libportaudio2)") from None
    return sounddevice
