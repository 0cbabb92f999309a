"""One input as every prediction path first reads it: :func:`analyse_file` gives the log-mel of its trimmed speech,
or why there is none (no speech, or the one-line failure). :meth:`Classifier.predict_result
<voxemo.inference.classifier.Classifier.predict_result>`, the adaptation sets and ``predict --adapt`` all start
here, so a file is judged the same way wherever it goes.
"""

from __future__ import annotations

import os

import numpy as np

from voxemo.core.config import Config
from voxemo.core.errors import VoxemoError
from voxemo.dsp.features import extract
from voxemo.dsp.speech import SpeechConfig, speech_presence
from voxemo.dsp.vad import VAD_RATE
from voxemo.inference.results import FileFailure, NoSpeech
from voxemo.io.audio import load_resampled


def analyse_file(path: str | os.PathLike[str], config: Config,
                 speech: SpeechConfig) -> np.ndarray | NoSpeech | FileFailure:
    """One file as every prediction path first sees it: the log-mel of its trimmed speech, or a
    :class:`~voxemo.inference.results.NoSpeech` (:func:`~voxemo.dsp.speech.speech_presence` on the decoded signal),
    or a :class:`~voxemo.inference.results.FileFailure` with the one-line cause (unreadable, silent, too short)."""
    name = str(path)
    try:
        # decoded, mixed down and resampled block by block: a long file is never held at its own rate
        signals = load_resampled(path, {config.audio.sample_rate, VAD_RATE}, max_duration=config.audio.max_duration)
        rate = config.audio.sample_rate
        spec = extract(signals[rate], rate, config.audio, config.features, name=name, full_scale=False)  # checks first
        presence = speech_presence(signals[VAD_RATE], VAD_RATE, speech)
    except VoxemoError as exc:
        return FileFailure(name, str(exc))
    except OSError as exc:
        return FileFailure(name, f"{name}: {exc.strerror or exc}")
    return spec if presence.speech else NoSpeech(name, presence.reason)


def analyse_job(job: tuple[str, Config, SpeechConfig]) -> np.ndarray | NoSpeech | FileFailure:
    """:func:`analyse_file` taking one tuple, for process pools."""
    return analyse_file(*job)


def why_unused(result: NoSpeech | FileFailure) -> str:
    """One line saying why an input is not in an adaptation set."""
    return f"{result.path}: {result.reason}" if isinstance(result, NoSpeech) else result.error
