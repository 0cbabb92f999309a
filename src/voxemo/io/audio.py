"""Reading audio files: the one place voxemo decodes a file (libsndfile through soundfile), with one-line errors
that name the file and the cause; and the audio extensions voxemo recognises.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from voxemo.core.errors import AudioError
from voxemo.dsp.signal import peak_level, resample_blocks

#: Extensions voxemo treats as audio when it walks a folder.
AUDIO_EXTENSIONS: frozenset[str] = frozenset({".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".opus"})

#: More channels than this in a header is a corrupt file, not a recording (ambisonics and arrays stay below it).
MAX_CHANNELS = 64

#: Frames decoded at once when a file is mixed down while it is read (:func:`load_resampled`).
MONO_BLOCK = 1 << 16

#: Files up to this long are decoded once by :func:`load_resampled` (held at their own rate, about 11 MB at 48 kHz);
#: longer ones twice, block by block, so that no long file is ever held at its own rate.
ONE_PASS_SECONDS = 60

#: Audio containers the corpus loaders pick up (case-insensitive). Corpora are distributed as WAV; FLAC copies
#: (like ``../shared/data``) are bit-identical, so both are accepted.
CORPUS_EXTENSIONS: tuple[str, ...] = (".wav", ".flac")


def libsndfile_cause(exc: Exception) -> str:
    """libsndfile's cause of a decoding error, one line (its str() repeats the path: "Error opening '<path>': ...")."""
    text = getattr(exc, "error_string", None) or str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def open_audio(path: str | os.PathLike[str]) -> sf.SoundFile:
    """Open an audio file for reading (whole or in blocks), or raise :class:`AudioError` naming the file and the
    cause: missing, a directory, empty, or not audio libsndfile can read."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise AudioError(f"{p}: no such file") from None
    except OSError as exc:  # a symlink loop, too long a name, a path through a file, no permission on a folder
        raise AudioError(f"{p}: cannot open ({exc.strerror or exc})") from None
    except ValueError:
        raise AudioError(f"{p!r}: the path holds a NUL byte") from None
    if stat.S_ISDIR(st.st_mode):
        raise AudioError(f"{p}: is a directory, not an audio file")
    if not stat.S_ISREG(st.st_mode):
        kind = "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a device or socket"
        raise AudioError(f"{p}: is {kind}, not an audio file")
    if st.st_size == 0:
        raise AudioError(f"{p}: empty file (0 bytes)")
    try:
        with open(p, "rb"):  # libsndfile says only "System error." when it may not read the file
            pass
    except OSError as exc:
        raise AudioError(f"{p}: cannot read ({exc.strerror or exc})") from None
    try:
        f = sf.SoundFile(str(p))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(f"{p}: not a readable audio file ({libsndfile_cause(exc)})") from None
    if f.channels > MAX_CHANNELS:
        f.close()
        raise AudioError(f"{p}: {f.channels} channels in its header, more than any recording voxemo reads "
                         f"({MAX_CHANNELS}): a corrupt header?")
    return f


def load_audio(path: str | os.PathLike[str], *, max_duration: float | None = None) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 without resampling.

    Parameters
    ----------
    path : path-like
        WAV (8/16/24/32-bit integer or float), FLAC, OGG/Vorbis, Opus or MP3 file.
    max_duration : float, optional
        Reject files longer than this many seconds before decoding them.

    Returns
    -------
    y : np.ndarray, shape (n_samples,) or (n_samples, n_channels), float32
    sr : int
        The file's sample rate in Hz.

    Raises
    ------
    AudioError
        With a one-line message naming the file and the cause.
    """
    p = Path(path)
    try:
        with open_audio(p) as f:
            sr = int(f.samplerate)
            _check_length(p, f, max_duration)
            y = f.read(dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(f"{p}: not a readable audio file ({libsndfile_cause(exc)})") from None
    except MemoryError:
        raise AudioError(f"{p}: too large to decode in memory") from None
    if y.size == 0:
        raise AudioError(f"{p}: contains no audio samples (truncated or empty stream)")
    return y, sr


def _check_length(p: Path, f: sf.SoundFile, max_duration: float | None) -> None:
    """Refuse a file longer than ``max_duration`` seconds from its header, before decoding it."""
    if max_duration is not None and f.frames > 0 and f.frames / f.samplerate > max_duration:
        raise AudioError(f"{p}: too long ({f.frames / f.samplerate:.1f} s > max_duration={max_duration:g} s); "
                         "cut it or raise AudioConfig.max_duration")


def load_resampled(path: str | os.PathLike[str], rates: Iterable[int], *,
                   max_duration: float | None = None) -> dict[int, np.ndarray]:
    """A file mixed to mono and resampled to each of ``rates`` while it is decoded, block by block
    (:func:`voxemo.dsp.signal.resample_blocks`): the same samples as :func:`load_audio`, then
    :func:`~voxemo.dsp.signal.to_mono`, :func:`~voxemo.dsp.signal.to_full_scale` and
    :func:`~voxemo.dsp.signal.resample`, without holding the file at its own rate. Two passes: the first finds the
    peak. Raises :class:`AudioError` as :func:`load_audio` does."""
    p = Path(path)
    try:
        with open_audio(p) as f:
            sr = int(f.samplerate)
            _check_length(p, f, max_duration)

            def mono_blocks() -> Iterator[np.ndarray]:
                f.seek(0)
                for block in f.blocks(blocksize=MONO_BLOCK, dtype="float32", always_2d=True):
                    yield block[:, 0].copy() if block.shape[1] == 1 else block.mean(axis=1, dtype=np.float32)

            # a short file is decoded once and held at its own rate (a few MB); a long one is decoded twice
            blocks: Iterable[np.ndarray] = list(mono_blocks()) if f.frames <= ONE_PASS_SECONDS * sr else mono_blocks()
            peak = max((peak_level(b) for b in blocks), default=0.0)
            if peak == 0.0 and f.frames == 0:
                raise AudioError(f"{p}: contains no audio samples (truncated or empty stream)")
            return resample_blocks(blocks if isinstance(blocks, list) else mono_blocks(), sr, rates,
                                   peak=peak if np.isfinite(peak) else 1.0)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(f"{p}: not a readable audio file ({libsndfile_cause(exc)})") from None
    except MemoryError:
        raise AudioError(f"{p}: too large to decode in memory") from None
