"""Emotion over time in a long recording: where the speech is, and which emotion each stretch carries.

:func:`timeline` reads a file block by block (``soundfile.SoundFile.blocks``; memory stays bounded whatever
the length, every format libsndfile reads: WAV, FLAC, OGG/Vorbis, Opus, MP3) and feeds an
:class:`~voxemo.inference.stream.EmotionStream`; :func:`merge_segments` joins consecutive speech windows with the same
emotion into segments. :func:`write_csv` writes the segments as CSV; the figure is
:func:`voxemo.reports.plots.plot_timeline`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import soundfile as sf
from tqdm import tqdm

from voxemo.core.errors import AudioError, VoxemoError
from voxemo.dsp.speech import NO_SPEECH
from voxemo.dsp.vad import VadConfig
from voxemo.inference.adaptset import adaptation_set
from voxemo.inference.loading import ModelRef, resolve_model
from voxemo.inference.stream import EmotionStream, Update
from voxemo.io.audio import libsndfile_cause, open_audio

if TYPE_CHECKING:
    from voxemo.inference.classifier import Classifier


#: Seconds read from the file per block.
BLOCK_SECONDS = 10.0


@dataclass(frozen=True)
class Segment:
    """A stretch of speech with one emotion: consecutive speech windows that agree (:func:`merge_segments`).

    Attributes
    ----------
    start, end : float
        Seconds from the start of the recording.
    emotion : str
    confidence : float
        The mean probability of ``emotion`` over the windows.
    probabilities : dict of str to float
        The mean probability of each class over the windows.
    windows : int
        How many windows the segment joins.
    """

    start: float
    end: float
    emotion: str
    confidence: float
    probabilities: dict[str, float]
    windows: int

    def to_dict(self) -> dict[str, Any]:
        """``{"start", "end", "emotion", "confidence", "probabilities", "windows"}``."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Timeline:
    """Emotion over time in one recording (:func:`timeline`); :meth:`to_dict` is its JSON.

    Attributes
    ----------
    path : str
    duration : float
        Seconds of audio read.
    segments : list of Segment
        The speech, in time order; empty when there is none.
    windows : list of Update
        Every window and pause the stream reported, in time order.
    reason : str or None
        Why there are no segments (``"no speech found"``); None when there are.
    adapted : dict or None
        With ``adapt=True``: what the model was adapted on (the adaptation record less its per-layer statistics).
    """

    path: str
    duration: float
    segments: list[Segment]
    windows: list[Update]
    reason: str | None = None
    adapted: dict[str, Any] | None = None

    @property
    def speech(self) -> bool:
        """Whether any speech was found."""
        return bool(self.segments)

    def to_dict(self, *, windows: bool = True) -> dict[str, Any]:
        """``{"path", "duration", "speech", ["reason"], "segments", ["windows"], ["adapted"]}``: ``reason`` only
        without speech, ``adapted`` only when adapted, ``windows`` when asked."""
        out: dict[str, Any] = {"path": self.path, "duration": self.duration, "speech": self.speech}
        if self.reason is not None:
            out["reason"] = self.reason
        out["segments"] = [s.to_dict() for s in self.segments]
        if windows:
            out["windows"] = [w.to_dict() for w in self.windows]
        if self.adapted is not None:
            out["adapted"] = self.adapted
        return out


def timeline(path: str | os.PathLike[str], model: ModelRef = None, *, window: float | None = None,
             hop: float | None = None, vad: VadConfig | None = None, adapt: bool = False,
             progress: bool = False) -> Timeline:
    """Emotion timeline of one audio file.

    Parameters
    ----------
    path : path-like
        Audio file of any length.
    model : Classifier, path-like or shipped name, optional
        A loaded classifier or what :func:`~voxemo.inference.loading.load_model` takes (default: the model shipped
        with voxemo).
    window, hop : float, optional
        Seconds per classified window and between window starts (:class:`~voxemo.inference.stream.EmotionStream`).
    vad : VadConfig, optional
        Voice-activity detector settings.
    adapt : bool
        Read the file twice: first to collect its speech, then to classify it with the model adapted without labels
        to that speech (:meth:`~voxemo.inference.classifier.Classifier.adapted`: one caller, one room). The
        result's ``adapted`` then says on what (``{"clips", "speech_seconds", "weight", ...}``). Too little speech is
        an :class:`~voxemo.core.errors.AdaptationError`.
    progress : bool
        Show a tqdm bar over seconds of audio.

    Returns
    -------
    Timeline
        ``windows`` are the stream's updates (speech windows and pauses, in time order), ``segments`` come from
        :func:`merge_segments`. A file without speech (no window passes the VAD and
        :func:`voxemo.dsp.speech.speech_presence`) gives no segments and ``reason`` ``"no speech found"``.

    Raises
    ------
    AudioError
        Missing, empty or unreadable file, or non-finite samples; the message names the file.
    """
    clf = resolve_model(model)
    p = Path(path)
    adapted = None
    if adapt:
        heard = _pass(p, clf, window, hop, vad, progress, collect=True)[1].heard
        if heard:

            clf = clf.adapted(adaptation_set([str(p)] * len(heard), heard, clf.config))
            adapted = clf.adaptation.summary() if clf.adaptation is not None else None
    updates, stream = _pass(p, clf, window, hop, vad, progress)
    segments = merge_segments(updates)
    return Timeline(str(p), round(stream.position, 3), segments, updates, None if segments else NO_SPEECH, adapted)


def _pass(p: Path, model: Classifier, window: float | None, hop: float | None, vad: VadConfig | None,
          progress: bool, *, collect: bool = False) -> tuple[list[Update], EmotionStream]:
    """One reading of the file through an :class:`EmotionStream`: its updates, and the stream."""
    updates: list[Update] = []
    with open_audio(p) as f:
        if not 1000 <= f.samplerate <= 384000:
            raise AudioError(f"{p}: sample rate {f.samplerate} Hz is outside 1000..384000 Hz; resample the file "
                             "(e.g. sox IN -r 16000 OUT)")
        stream = EmotionStream(model, f.samplerate, window=window, hop=hop, vad=vad, collect=collect)
        total = f.frames / f.samplerate if f.frames > 0 else None
        with tqdm(total=total, unit="s", desc=p.name, disable=not progress, leave=False,
                  bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}]") as bar:
            for block in _blocks(f, p):
                try:
                    updates += stream.feed(block)
                except VoxemoError as exc:
                    raise AudioError(f"{p}: {exc}") from None
                bar.update(len(block) / f.samplerate)
        if stream.position == 0:
            raise AudioError(f"{p}: contains no audio samples (truncated or empty stream)")
        updates += stream.flush()
    return updates, stream


def merge_segments(updates: Sequence[Update]) -> list[Segment]:
    """Join runs of consecutive speech windows with the same emotion into segments.

    A pause or a window of another emotion ends a run. Where two runs of one utterance overlap (windows
    overlap by ``window - hop``), the boundary is the middle of the overlap.

    Returns
    -------
    list of Segment
        Probabilities are the mean over the run's windows, confidence that of its emotion.

    Examples
    --------
    >>> w = lambda s, e, emo: Update(s, e, emo, 1.0, {"calm": float(emo == "calm"), "sad": float(emo == "sad")},
    ...                              speech=True)
    >>> pause = Update(4.5, 5.0)
    >>> [(s.start, s.end, s.emotion) for s in merge_segments(
    ...     [w(0, 3, "calm"), w(1.5, 4.5, "calm"), pause, w(5, 8, "calm"), w(6.5, 9.5, "sad")])]
    [(0, 4.5, 'calm'), (5, 7.25, 'calm'), (7.25, 9.5, 'sad')]
    """
    runs: list[list[Update]] = []
    run_open = False
    for u in updates:
        if not u.speech:
            run_open = False
            continue
        if run_open and runs[-1][-1].emotion == u.emotion:
            runs[-1].append(u)
        else:
            runs.append([u])
            run_open = True
    segments: list[Segment] = []
    for run in runs:
        classes = list(run[0].probabilities)
        mean = {c: round(float(np.mean([w.probabilities[c] for w in run])), 4) for c in classes}
        emotion = str(run[0].emotion)
        start = run[0].start
        if segments and segments[-1].end > start:  # overlapping runs of one utterance meet in the middle
            start = round((segments[-1].end + start) / 2, 3)
            segments[-1] = dataclasses.replace(segments[-1], end=start)
        segments.append(Segment(start, run[-1].end, emotion, mean.get(emotion, 0.0), mean, len(run)))
    return segments


def _blocks(f: sf.SoundFile, p: Path) -> Iterator[np.ndarray]:
    size = max(1, int(BLOCK_SECONDS * f.samplerate))
    try:
        yield from f.blocks(blocksize=size, dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise AudioError(f"{p}: decoding failed part-way ({libsndfile_cause(exc)})") from None
