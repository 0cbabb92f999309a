"""Emotion over time in a long recording: where the speech is, and which emotion each stretch carries.

:func:`timeline` reads a file block by block (``soundfile.SoundFile.blocks``; memory stays bounded whatever
the length, every format libsndfile reads: WAV, FLAC, OGG/Vorbis, Opus, MP3) and feeds an
:class:`~voxemo.inference.stream.EmotionStream`; :func:`merge_segments` joins consecutive speech windows with the same
emotion into segments. :func:`write_csv` writes the segments as CSV; the figure is
:func:`voxemo.reports.plots.plot_timeline`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import soundfile as sf
from tqdm import tqdm

from voxemo.core.errors import AudioError, VoxemoError
from voxemo.dsp.speech import NO_SPEECH
from voxemo.dsp.vad import VadConfig
from voxemo.inference.loading import ModelRef, resolve_model
from voxemo.inference.stream import EmotionStream, Update
from voxemo.io.audio import libsndfile_cause, open_audio

if TYPE_CHECKING:
    from voxemo.inference.classifier import Classifier


#: Seconds read from the file per block.
BLOCK_SECONDS = 10.0


def timeline(path: str | os.PathLike[str], model: ModelRef = None, *, window: float | None = None,
             hop: float | None = None, vad: VadConfig | None = None, adapt: bool = False,
             progress: bool = False) -> dict[str, Any]:
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
        result then has ``"adapted": {"clips", "speech_seconds", "weight", ...}``. Too little speech is an
        :class:`~voxemo.core.errors.AdaptationError`.
    progress : bool
        Show a tqdm bar over seconds of audio.

    Returns
    -------
    dict
        ``{"path", "duration" (s), "speech", "segments": [...], "windows": [...]}``: ``windows`` are the stream's
        updates (speech windows and pauses, in time order), ``segments`` come from :func:`merge_segments`.
        A file without speech (no window passes the VAD and :func:`voxemo.dsp.speech.speech_presence`) gives
        ``"speech": false``, ``"reason": "no speech found"`` and an empty ``segments`` list.

    Raises
    ------
    AudioError
        Missing, empty or unreadable file, or non-finite samples; the message names the file.
    """
    clf = resolve_model(model)
    p = Path(path)
    extra: dict[str, Any] = {}
    if adapt:
        heard = _pass(p, clf, window, hop, vad, progress, collect=True)[1].heard
        if heard:
            from voxemo.inference.adaptset import adaptation_set

            clf = clf.adapted(adaptation_set([str(p)] * len(heard), heard, clf.config))
            extra = {"adapted": {k: v for k, v in (clf.adaptation or {}).items() if k != "layers"}}
    updates, stream = _pass(p, clf, window, hop, vad, progress)
    segments = merge_segments(updates)
    found = {"speech": True} if segments else {"speech": False, "reason": NO_SPEECH}
    return {"path": str(p), "duration": round(stream.position, 3), **found, "segments": segments,
            "windows": updates, **extra}


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


def merge_segments(updates: Sequence[Update]) -> list[dict[str, Any]]:
    """Join runs of consecutive speech windows with the same emotion into segments.

    A pause or a window of another emotion ends a run. Where two runs of one utterance overlap (windows
    overlap by ``window - hop``), the boundary is the middle of the overlap.

    Returns
    -------
    list of dict
        ``{"start": s, "end": s, "emotion": str, "confidence": float, "probabilities": {emotion: p},
        "windows": n}``; probabilities are the mean over the run's windows, confidence that of its emotion.

    Examples
    --------
    >>> w = lambda s, e, emo: {"start": s, "end": e, "emotion": emo, "speech": True,
    ...                        "probabilities": {"calm": float(emo == "calm"), "sad": float(emo == "sad")}}
    >>> pause = {"start": 4.5, "end": 5.0, "emotion": None, "speech": False, "probabilities": {}}
    >>> [(s["start"], s["end"], s["emotion"]) for s in merge_segments(
    ...     [w(0, 3, "calm"), w(1.5, 4.5, "calm"), pause, w(5, 8, "calm"), w(6.5, 9.5, "sad")])]
    [(0, 4.5, 'calm'), (5, 7.25, 'calm'), (7.25, 9.5, 'sad')]
    """
    runs: list[list[Update]] = []
    run_open = False
    for u in updates:
        if not u["speech"]:
            run_open = False
            continue
        if run_open and runs[-1][-1]["emotion"] == u["emotion"]:
            runs[-1].append(u)
        else:
            runs.append([u])
            run_open = True
    segments: list[dict[str, Any]] = []
    for run in runs:
        classes = list(run[0]["probabilities"])
        mean = {c: round(float(np.mean([w["probabilities"][c] for w in run])), 4) for c in classes}
        emotion = run[0]["emotion"]
        seg = {"start": run[0]["start"], "end": run[-1]["end"], "emotion": emotion,
               "confidence": mean.get(emotion, 0.0), "probabilities": mean, "windows": len(run)}
        if segments and segments[-1]["end"] > seg["start"]:
            mid = round((segments[-1]["end"] + seg["start"]) / 2, 3)
            segments[-1]["end"] = seg["start"] = mid
        segments.append(seg)
    return segments


def _blocks(f: sf.SoundFile, p: Path) -> Iterator[np.ndarray]:
    size = max(1, int(BLOCK_SECONDS * f.samplerate))
    try:
        yield from f.blocks(blocksize=size, dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise AudioError(f"{p}: decoding failed part-way ({libsndfile_cause(exc)})") from None
