"""Voice-activity detection: where the speech is in a stream of audio.

Frames of 10, 20 or 30 ms at 16 kHz are classified by the WebRTC VAD (``webrtcvad``, a GMM on sub-band energies
in C: about 3 ms per minute of audio, which a one-hour timeline needs; Silero's neural VAD is more accurate
but costs about 100x more per frame). :class:`SpeechTracker` turns the frame decisions into utterances with a
hysteresis: speech starts when enough of the last ``onset`` seconds are voiced and ends after ``hangover``
seconds without a voiced frame, so short pauses between words do not split a sentence. A frame also counts as
voiced only if its energy is within ``gate_db`` of the loudest frame of the last ``gate_memory`` seconds: the
WebRTC VAD adapts to a new noise floor only over seconds, and without the gate a step in the background noise
(or a pause filled with louder noise than the speech around it) is taken for speech for that long.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import webrtcvad

from voxemo.core.config import _Config
from voxemo.core.errors import ConfigError
from voxemo.dsp.signal import row_power

#: The rate the VAD runs at (webrtcvad accepts 8, 16, 32 or 48 kHz; 16 kHz covers the speech band).
VAD_RATE = 16000


@dataclass(frozen=True)
class VadConfig(_Config):
    """Settings of the voice-activity detector; durations in seconds.

    Attributes
    ----------
    aggressiveness : int
        WebRTC VAD mode 0..3; higher rejects more non-speech (and some quiet speech).
    frame_ms : int
        Frame length in milliseconds: 10, 20 or 30.
    onset : float
        Look-back for starting an utterance: it starts when ``onset_ratio`` of the last ``onset`` seconds of
        frames are voiced, at the first voiced frame among them.
    onset_ratio : float
        Fraction of voiced frames in the look-back that starts an utterance.
    hangover : float
        Seconds without a voiced frame that end an utterance (pauses between words are shorter).
    pad : float
        Seconds of context kept before the first and after the last voiced frame of an utterance.
    min_speech : float
        Utterances shorter than this (padding included) are reported as non-speech.
    gate_db : float
        Frames more than this many dB below the loudest frame of the last ``gate_memory`` seconds are not
        speech; ``0`` turns the gate off.
    gate_memory : float
        Seconds over which the loudest frame is remembered.
    """

    aggressiveness: int = 2
    frame_ms: int = 30
    onset: float = 0.3
    onset_ratio: float = 0.5
    hangover: float = 0.6
    pad: float = 0.1
    min_speech: float = 0.4
    gate_db: float = 35.0
    gate_memory: float = 10.0

    def __post_init__(self) -> None:
        if self.aggressiveness not in (0, 1, 2, 3):
            raise ConfigError(f"VadConfig.aggressiveness={self.aggressiveness!r} must be 0, 1, 2 or 3")
        if self.frame_ms not in (10, 20, 30):
            raise ConfigError(f"VadConfig.frame_ms={self.frame_ms!r} must be 10, 20 or 30")
        if not 0 < self.onset_ratio <= 1:
            raise ConfigError(f"VadConfig.onset_ratio={self.onset_ratio!r} must be in (0, 1]")
        if self.onset < self.frame_ms / 1000 or self.hangover < self.frame_ms / 1000:
            raise ConfigError("VadConfig.onset and VadConfig.hangover must be at least one frame long")
        if self.pad < 0 or self.min_speech < 0 or self.gate_db < 0:
            raise ConfigError("VadConfig.pad, VadConfig.min_speech and VadConfig.gate_db must be >= 0")
        if self.gate_memory < self.frame_ms / 1000:
            raise ConfigError(f"VadConfig.gate_memory={self.gate_memory!r} must be at least one frame long")
        if self.hangover <= 2 * self.pad:
            raise ConfigError(f"VadConfig.hangover={self.hangover} must exceed 2 * pad={self.pad} "
                              "so that padded utterances never overlap")

    @property
    def frame_seconds(self) -> float:
        return self.frame_ms / 1000


def to_pcm16(y: np.ndarray) -> bytes:
    """Float samples in [-1, 1] -> 16-bit little-endian PCM bytes (values outside are clipped)."""
    return (np.clip(y, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


class SpeechTracker:
    """Streaming utterance detection on 16 kHz mono float32 audio.

    :meth:`push` takes any number of samples and returns the events the new frames decided, as
    ``("start", frame)`` / ``("end", frame)`` pairs with frame indices (multiply by
    ``config.frame_seconds`` for seconds). Ends are exclusive and include ``config.pad``; an utterance shorter
    than ``config.min_speech`` ends with ``("drop", frame)`` instead. The events do not depend on how the
    audio is cut into pushes.

    Attributes
    ----------
    frames : int
        Frames classified so far.
    active : bool
        Inside an utterance.
    start : int
        First frame of the current (or last) utterance, padding included.
    voiced_end : int
        One past the last voiced frame of the current utterance.
    """

    def __init__(self, config: VadConfig | None = None) -> None:
        self.config = config or VadConfig()
        c = self.config
        self._vad = webrtcvad.Vad(c.aggressiveness)
        self._frame_len = VAD_RATE * c.frame_ms // 1000
        self._onset = max(1, round(c.onset / c.frame_seconds))
        self._need = max(1, int(np.ceil(c.onset_ratio * self._onset)))
        self._hangover = max(1, round(c.hangover / c.frame_seconds))
        self._pad = round(c.pad / c.frame_seconds)
        self._min = c.min_speech / c.frame_seconds
        self._memory = max(1, round(c.gate_memory / c.frame_seconds))
        self._loud: deque[tuple[int, float]] = deque()  # (frame, dB), decreasing dB: a sliding maximum
        self._pending = np.zeros(0, np.float32)
        self._recent: deque[bool] = deque(maxlen=self._onset)
        self.frames = 0
        self.active = False
        self.start = 0
        self.voiced_end = 0

    @property
    def settled(self) -> int:
        """Frames before this index can no longer become part of an utterance that has not started yet."""
        if self.active:
            return self.start
        return max(0, self.frames - self._onset - self._pad + 1)

    def push(self, y: np.ndarray) -> list[tuple[str, int]]:
        """Classify the complete frames in ``y`` (float32, 16 kHz) and return the events they decide."""
        buf = np.concatenate([self._pending, np.asarray(y, np.float32)]) if len(self._pending) else y
        n = len(buf) // self._frame_len
        self._pending = np.array(buf[n * self._frame_len :], np.float32)
        if n == 0:
            return []
        frames = np.asarray(buf[: n * self._frame_len], np.float32)
        pcm = to_pcm16(frames)
        energy = 10 * np.log10(row_power(frames.reshape(n, -1)) + 1e-10)
        size = 2 * self._frame_len
        events: list[tuple[str, int]] = []
        for i in range(n):
            frame = self.frames
            self.frames += 1
            voiced = self._vad.is_speech(pcm[i * size : (i + 1) * size], VAD_RATE)  # always: it adapts to the noise
            voiced = self._loud_enough(frame, float(energy[i])) and voiced
            if self.active:
                if voiced:
                    self.voiced_end = frame + 1
                elif frame + 1 - self.voiced_end >= self._hangover:
                    events.append(self._end(self.voiced_end + self._pad))
                continue
            self._recent.append(voiced)
            if voiced and sum(self._recent) >= self._need:
                first = frame + 1 - len(self._recent) + self._recent.index(True)
                self.active, self.voiced_end = True, frame + 1
                self.start = max(0, first - self._pad)
                self._recent.clear()
                events.append(("start", self.start))
        return events

    def _loud_enough(self, frame: int, db: float) -> bool:
        loud = self._loud
        while loud and loud[-1][1] <= db:
            loud.pop()
        loud.append((frame, db))
        while loud[0][0] <= frame - self._memory:
            loud.popleft()
        return self.config.gate_db == 0 or db >= loud[0][1] - self.config.gate_db

    def finish(self) -> list[tuple[str, int]]:
        """End of the stream: close the current utterance (the leftover partial frame is not classified)."""
        if not self.active:
            return []
        return [self._end(min(self.voiced_end + self._pad, self.frames))]

    def _end(self, end: int) -> tuple[str, int]:
        self.active = False
        return ("drop" if end - self.start < self._min else "end", end)


def voiced_frames(y: np.ndarray, config: VadConfig | None = None) -> np.ndarray:
    """Frame decisions of the WebRTC VAD over a whole 16 kHz mono float signal, with :class:`SpeechTracker`'s
    level gate (frames more than ``gate_db`` below the signal's loudest frame are not voiced).

    Returns
    -------
    np.ndarray of bool, shape (len(y) // frame_length,): one per complete frame of ``config.frame_ms``.
    """
    c = config or VadConfig()
    size = VAD_RATE * c.frame_ms // 1000
    n = len(y) // size
    if n == 0:
        return np.zeros(0, bool)
    frames = np.asarray(y[: n * size], np.float32)
    pcm = to_pcm16(frames)
    vad = webrtcvad.Vad(c.aggressiveness)
    out = np.array([vad.is_speech(pcm[2 * size * i : 2 * size * (i + 1)], VAD_RATE) for i in range(n)], bool)
    if c.gate_db > 0:
        energy = 10 * np.log10(row_power(frames.reshape(n, -1)) + 1e-10)
        out &= energy >= energy.max() - c.gate_db
    return out
