"""Emotion of audio that arrives in pieces: a microphone, a websocket, a file read block by block.

:class:`EmotionStream` takes chunks of any size with :meth:`~EmotionStream.feed` and returns updates as soon as
the audio they cover has arrived::

    chunk -> mono -> soxr.ResampleStream ---------> model-rate ring buffer -> windows -> classifier
                  -> soxr.ResampleStream (16 kHz) -> VAD -> utterances -----^

The voice-activity detector (:mod:`voxemo.dsp.vad`) splits the stream into utterances and pauses. Each utterance
is covered by windows of ``window`` seconds every ``hop`` seconds, starting at its first voiced frame, and a
last window aligned with its end when more than :data:`MIN_TAIL` is left (the windowing
:func:`voxemo.dsp.features.windows` applies to a clip); an
utterance shorter than ``window`` is one window. The VAD alone takes noise, tones and music for speech, so each
window must also pass the speech-or-not decision of ``voxemo predict`` (:func:`voxemo.dsp.speech.speech_presence`:
a voice whose pitch moves); a window that fails it is reported as not speech. Every speech window's samples go
through the classifier's own ``predict_proba`` (resample, trim, log-mel: the preprocessing of training and of
``voxemo predict``). Pauses are reported in pieces of at most ``hop`` seconds, so a listener hears from the
stream while nobody speaks.

The updates do not depend on how the audio is cut into chunks: the resamplers, the VAD and the window grid
all work on absolute sample positions.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import soxr

from voxemo.core.errors import AudioError, ConfigError, VoxemoError
from voxemo.dsp.signal import to_mono
from voxemo.dsp.speech import SpeechConfig, speech_presence
from voxemo.dsp.vad import VAD_RATE, SpeechTracker, VadConfig
from voxemo.inference.adaptset import adaptation_set
from voxemo.inference.loading import ModelRef, resolve_model


@dataclass(frozen=True)
class Update:
    """What the stream heard in one window, or in a piece of a pause; :meth:`to_dict` is its JSON.

    Attributes
    ----------
    start, end : float
        Seconds from the start of the stream (rounded to the millisecond).
    emotion : str or None
        The most probable class; None for a pause or a window that is not speech.
    confidence : float
        The probability of ``emotion`` (0 without one).
    probabilities : dict of str to float
        One per class of the model (empty without speech).
    speech : bool
        Whether the window passed the VAD and the speech-or-not decision.
    """

    start: float
    end: float
    emotion: str | None = None
    confidence: float = 0.0
    probabilities: dict[str, float] = dataclasses.field(default_factory=dict)
    speech: bool = False

    def to_dict(self) -> dict[str, Any]:
        """``{"start", "end", "emotion", "confidence", "probabilities", "speech"}``."""
        return dataclasses.asdict(self)


#: An utterance's end-aligned last window is added only when the grid leaves more than this many seconds of it
#: uncovered (a shorter tail is mostly the VAD's padding and hangover, and would repeat the previous window).
MIN_TAIL = 0.2

#: the longest default window: a timeline's resolution. A model whose segments are longer (the whisper family reads
#: up to 6 s at once, and was trained on clips of 2 s and up) is still asked about 3 s at a time.
MAX_DEFAULT_WINDOW = 3.0

#: an adapting stream keeps the log-mels of at most this many seconds of speech and adapts no more after that
MAX_ADAPT_SECONDS = 1800.0


class EmotionStream:
    """Incremental emotion recognition over a stream of audio.

    Parameters
    ----------
    model : Classifier, path-like, shipped name or None
        A loaded model, or what :func:`voxemo.load_model` takes.
    sample_rate : int
        Rate of the chunks that will be fed, in Hz.
    window : float, optional
        Seconds of audio per classification (default: the model's segment length, ``config.audio.duration``, at
        most :data:`MAX_DEFAULT_WINDOW`).
    hop : float, optional
        Seconds between window starts within an utterance, and the longest pause update (default ``window / 2``).
    vad : VadConfig, optional
        Voice-activity detector settings.
    speech : SpeechConfig, optional
        Thresholds of the speech-or-not check every window passes (default: the model's, ``model.speech``).
    adapt : float
        Seconds of speech after which the stream adapts its model, without labels, to the speech it has heard
        (:meth:`~voxemo.inference.classifier.Classifier.adapted`: one speaker, one room, one line), and again each
        time the speech heard doubles, up to :data:`MAX_ADAPT_SECONDS`; 0 (the default) never. Windows before the
        first adaptation come from the model as given, which is never changed; :attr:`adaptations` counts them.
    collect : bool
        Keep the log-mels of the speech heard in :attr:`heard` (as ``adapt`` does) without adapting: the first pass
        of :func:`voxemo.inference.timeline.timeline` with ``adapt=True``.

    Examples
    --------
    >>> import numpy as np
    >>> from voxemo import load_model
    >>> stream = EmotionStream(load_model(), 16000)
    >>> updates = stream.feed(np.zeros(16000, np.float32)) + stream.flush()
    >>> [(u.start, u.end, u.speech) for u in updates]
    [(0.0, 1.0, False)]
    """

    def __init__(self, model: ModelRef, sample_rate: int, *, window: float | None = None, hop: float | None = None,
                 vad: VadConfig | None = None, speech: SpeechConfig | None = None, adapt: float = 0.0,
                 collect: bool = False) -> None:
        model = resolve_model(model)
        audio = model.config.audio
        if not 0 <= adapt <= MAX_ADAPT_SECONDS:
            raise ConfigError(f"adapt={adapt!r} s of speech must be between 0 (never) and {MAX_ADAPT_SECONDS:g}")
        if not isinstance(sample_rate, (int, np.integer)) or not 1000 <= sample_rate <= 384000:
            raise ConfigError(f"sample_rate={sample_rate!r} must be an integer number of Hz in 1000..384000")
        self.model = self.base_model = model
        self.adapt_after, self._next_adapt, self.adaptations = float(adapt), float(adapt), 0
        self.collect = collect or adapt > 0
        self.heard: list[np.ndarray] = []  # log-mels of the speech heard, each stretch once
        self.heard_seconds, self._heard_until = 0.0, 0.0
        self.sample_rate = int(sample_rate)
        self.vad = vad or VadConfig()
        self.speech = speech or getattr(model, "speech", None) or SpeechConfig()
        self.window = float(min(audio.duration, MAX_DEFAULT_WINDOW) if window is None else window)
        self.hop = float(self.window / 2 if hop is None else hop)
        if not math.isfinite(self.window) or not max(audio.min_duration, self.vad.min_speech) <= self.window <= 60:
            raise ConfigError(f"window={self.window!r} s must be between "
                              f"{max(audio.min_duration, self.vad.min_speech):g} and 60 s")
        if not math.isfinite(self.hop) or not 0.05 <= self.hop <= self.window:
            raise ConfigError(f"hop={self.hop!r} s must be between 0.05 s and window={self.window:g} s")
        self.model_rate = audio.sample_rate
        self._to_model = self._resampler(self.model_rate)
        self._to_vad = self._resampler(VAD_RATE)
        self._tracker = SpeechTracker(self.vad)
        self._frame_s = self.vad.frame_seconds
        self._audio = np.zeros(0, np.float32)  # model-rate samples from index self._offset on
        self._offset = 0
        self._received = 0  # input samples
        self._plan: deque[tuple[float, float, bool]] = deque()  # (start s, end s, speech) not yet emitted
        self._utt = 0.0  # start of the current utterance (s)
        self._k = 0  # windows planned in it
        self._covered = 0.0  # end of its last planned window (s)
        self._gap = 0.0  # start of the current pause (s)
        self._j = 0  # pause pieces planned in it
        self._closed = False

    @property
    def classes(self) -> list[str]:
        """Emotion labels, the keys of every update's ``probabilities``."""
        return [str(c) for c in self.model.classes_]

    @property
    def position(self) -> float:
        """Seconds of audio fed so far."""
        return self._received / self.sample_rate

    def feed(self, chunk: np.ndarray) -> list[Update]:
        """Add samples, shape (n,) or (n, channels), float in [-1, 1] or integer PCM, at ``sample_rate``.

        Returns the updates completed by this chunk, in time order (often none: a window is reported once
        the audio after it has arrived).
        """
        if self._closed:
            raise VoxemoError("stream already flushed: start a new EmotionStream")
        y = _as_float(chunk)
        if not np.all(np.isfinite(y)):
            raise AudioError("audio chunk contains non-finite samples (NaN or inf)")
        if len(y) == 0:
            return []
        self._received += len(y)
        self._push(y, last=False)
        return self._emit(final=False)

    def flush(self) -> list[Update]:
        """End of the stream: close the last utterance or pause and return the remaining updates."""
        if self._closed:
            return []
        self._push(np.zeros(0, np.float32), last=True)
        self._handle(self._tracker.finish())
        self._plan_pause(self.position, final=True)
        self._closed = True
        return self._emit(final=True)

    # ---- internals -------------------------------------------------------------------------------------------
    def _resampler(self, rate: int) -> soxr.ResampleStream | None:
        if rate == self.sample_rate:
            return None
        return soxr.ResampleStream(self.sample_rate, rate, 1, dtype="float32", quality="HQ")

    def _push(self, y: np.ndarray, *, last: bool) -> None:
        to_model = y if self._to_model is None else self._to_model.resample_chunk(y, last=last)
        to_vad = y if self._to_vad is None else self._to_vad.resample_chunk(y, last=last)
        if len(to_model):
            self._audio = np.concatenate([self._audio, np.asarray(to_model, np.float32)])
        self._handle(self._tracker.push(np.asarray(to_vad, np.float32)))
        t = self._tracker
        if t.active:
            self._plan_speech(t.voiced_end * self._frame_s, final=False)
        else:
            self._plan_pause(t.settled * self._frame_s, final=False)

    def _handle(self, events: list[tuple[str, int]]) -> None:
        for kind, frame in events:
            t = frame * self._frame_s
            if kind == "start":
                self._plan_pause(t, final=True)
                self._utt, self._k = t, 0
                continue
            if kind == "end":
                self._plan_speech(t, final=True)
                t = self._covered  # the pause starts where the windows end (at most MIN_TAIL before t)
            else:  # "drop": too short to be speech
                self._plan.append((self._utt, t, False))
            self._gap, self._j = t, 0

    def _plan_speech(self, limit: float, *, final: bool) -> None:
        """Plan the windows of the current utterance that end by ``limit``; at its end, the last window too."""
        while self._utt + self._k * self.hop + self.window <= limit + 1e-9:
            start = self._utt + self._k * self.hop
            self._plan.append((start, start + self.window, True))
            self._k += 1
            self._covered = start + self.window
        if final:
            if self._k == 0:
                self._plan.append((self._utt, limit, True))
                self._covered = limit
            elif self._covered < limit - MIN_TAIL:
                self._plan.append((limit - self.window, limit, True))
                self._covered = limit

    def _plan_pause(self, limit: float, *, final: bool) -> None:
        """Plan pause pieces of ``hop`` seconds that end by ``limit``; at the pause's end, the remainder."""
        while self._gap + (self._j + 1) * self.hop <= limit + 1e-9:
            start = self._gap + self._j * self.hop
            self._plan.append((start, start + self.hop, False))
            self._j += 1
        start = self._gap + self._j * self.hop
        if final and limit - start > 1e-6:
            self._plan.append((start, limit, False))
            self._gap, self._j = limit, 0

    def _emit(self, *, final: bool) -> list[Update]:
        available = self._offset + len(self._audio)
        ready: list[tuple[float, float, bool]] = []
        while self._plan and (final or not self._plan[0][2] or self._sample(self._plan[0][1]) <= available):
            ready.append(self._plan.popleft())
        signals = [self._slice(s, e) for s, e, speech in ready if speech]
        scored = self._classify(signals)
        probs = iter(scored)
        updates = [self._update(s, e, next(probs) if speech else None) for s, e, speech in ready]
        if self.collect:
            self._hear([(s, e) for s, e, speech in ready if speech], scored)
        self._trim()
        return updates

    def _hear(self, spans: list[tuple[float, float]], scored: list[np.ndarray | None]) -> None:
        """Keep the log-mels of the speech windows not heard before, and adapt when enough has been heard."""

        for (start, end), probs in zip(spans, scored):
            begin = max(start, self._heard_until)
            if probs is None or end - begin < self.model.config.audio.min_duration:
                continue
            if self.heard_seconds >= MAX_ADAPT_SECONDS:
                return
            try:
                spec = self.base_model.features(self._slice(begin, end), sr=self.model_rate)
            except AudioError:
                continue
            self.heard.append(spec)
            self._heard_until = end
            self.heard_seconds += spec.shape[1] * self.model.config.features.hop_length / self.model_rate
        if self.adapt_after and self.heard_seconds >= self._next_adapt and self._next_adapt <= MAX_ADAPT_SECONDS:
            aset = adaptation_set([], self.heard, self.base_model.config, min_seconds=0)
            self.model = self.base_model.adapted(aset)
            self.adaptations += 1
            self._next_adapt = 2 * self.heard_seconds

    def _sample(self, t: float) -> int:
        return int(round(t * self.model_rate))

    def _slice(self, start: float, end: float) -> np.ndarray:
        a = max(self._sample(start) - self._offset, 0)
        b = max(self._sample(end) - self._offset, a)
        return self._audio[a:b]

    def _trim(self) -> None:
        """Drop the model-rate samples no planned or future window can need."""
        t = self._tracker
        if t.active:
            keep = self._utt + max(self._k - 1, 0) * self.hop  # the end-aligned last window starts after this
        else:
            keep = t.settled * self._frame_s
        starts = [s for s, _, speech in self._plan if speech]
        cut = min(self._sample(min([keep, *starts])) - self._offset, len(self._audio))
        if cut > 0:
            self._audio = self._audio[cut:].copy()
            self._offset += cut

    def _classify(self, signals: list[np.ndarray]) -> list[np.ndarray | None]:
        """Probabilities per signal through the model's own preprocessing, in one batch; ``None`` for a
        window without speech (:func:`~voxemo.dsp.speech.speech_presence`) or that preprocessing rejects (e.g. less
        than ``min_duration`` of sound after trimming)."""
        speech = [i for i, s in enumerate(signals) if speech_presence(s, self.model_rate, self.speech, self.vad).speech]
        out: list[np.ndarray | None] = [None] * len(signals)
        if not speech:
            return out
        try:
            found = self.model.predict_proba([signals[i] for i in speech], sr=self.model_rate, speech_check=False)
            for i, p in zip(speech, found):
                out[i] = p
            return out
        except AudioError:
            pass
        for i in speech:
            try:
                out[i] = self.model.predict_proba(signals[i], sr=self.model_rate, speech_check=False)
            except AudioError:
                out[i] = None
        return out

    def _update(self, start: float, end: float, probs: np.ndarray | None) -> Update:
        if probs is None:
            return Update(round(start, 3), round(end, 3))
        best = int(np.argmax(probs))
        return Update(round(start, 3), round(end, 3), str(self.model.classes_[best]), round(float(probs[best]), 4),
                      {str(c): round(float(p), 4) for c, p in zip(self.model.classes_, probs)}, speech=True)


def _as_float(chunk: np.ndarray) -> np.ndarray:
    """Mono float32 in [-1, 1] from float or integer PCM of shape (n,) or (n, channels)."""
    y = np.asarray(chunk)
    if y.dtype.kind in "iu":
        half = float(2 ** (8 * y.dtype.itemsize - 1))
        y = ((y.astype(np.float64) - (half if y.dtype.kind == "u" else 0.0)) / half).astype(np.float32)
    elif y.dtype.kind != "f":
        raise AudioError(f"audio chunk has dtype {y.dtype}; expected float or integer PCM samples")
    return to_mono(y)
