"""Speech or not: whether a signal holds speech at all, decided before any emotion is predicted.

:func:`speech_presence` runs at 16 kHz on 10 ms hops and combines

- **level**: hops louder than ``floor_db`` dBFS and within ``range_db`` of the loudest hop are *active*
  (silence, ±1 LSB dither and room tone are not);
- **the WebRTC VAD** (:func:`voxemo.dsp.vad.voiced_frames`, the detector the stream and timeline use): active hops
  it calls voiced;
- **pitch**: the normalised square difference function (McLeod's NSDF) of a 40 ms frame; a hop is *pitched* when
  its clarity (the NSDF's chosen peak, 0..1) reaches ``clarity`` at an f0 of 65-600 Hz after the NSDF's first
  negative lobe (noise, clicks and brown noise have no such peak). The same NSDF read over 65-2000 Hz gives a
  *wide* track that follows whistles, sirens and sweeps above a voice's range (the voice-range track reports
  them at a subharmonic, with a lower clarity);
- **pitch movement**: speech f0 glides, syllable after syllable; a tone, hum, DTMF digit, chord, plucked string or
  synthesised note holds its f0 to within a few cents. Consecutive pitched hops are *continuous* when f0 changes by
  less than ``max_jump`` semitones; over every run of five continuous hops the least-squares f0 slope is taken (the
  estimate's jitter averages out, a glide does not), and ``movement`` is the share of those slopes of at least
  ``min_move`` semitones per hop;
- **spectral flatness** of the pitched hops (300-4000 Hz): noise with a stray periodic frame is flat;
- **unbroken pitch**: a voice is syllabic, its voicing broken by consonants and pauses every few hundred ms (the
  longest unbroken pitched stretch in the benchmark's speech corpora is 1.13 s), and within a breath its f0 stays
  in a voice's range and keeps moving, by less than an octave. A chirp, a siren's wail, a whistle or an engine is
  one unbroken pitched sound for seconds. A run of consecutive wide-pitched hops of at least ``unbroken_seconds``
  is *not a voice* when its f0 spans ``unbroken_span`` semitones or more (10th to 90th percentile: a sweep), its
  median f0 is above ``voice_f0_max`` (a whistle or siren) or its own movement is below ``unbroken_movement`` (a
  drone); ``unbroken`` is the share of the wide-pitched hops in such runs;
- **level steadiness**: a voice's level rises and falls with every syllable; a siren, alarm or machine holds it.
  ``level_range`` is the spread (10th to 90th percentile, dB) of the active hops' level;
- **barks**: a bark (or a yelp) is a burst that is loudest at its onset and dies away while its pitch, high for a
  voice, falls fast. ``f0`` is the median f0 of the pitched hops, ``fall`` the share of five-hop windows of the
  pitch track (continuous to within ``FALL_JUMP`` semitones) falling at least ``FAST_FALL`` semitones per hop, and
  ``decay`` the share of pitched hops whose level falls at least ``DECAY_DB`` dB per hop (five-hop slope).

The signal is speech when the VAD and the pitch tracker agree on at least ``min_voiced`` seconds, its f0 moves
(``movement >= min_movement``), the pitched hops are not flat (median flatness below ``max_flatness``), long
unbroken runs that are not a voice hold less than ``max_unbroken`` of its pitched time, its level is not steady
(``level_range >= min_level_range`` when it is active for at least ``LEVEL_SECONDS``), and it is not bark-like (not
``f0 >= bark_f0`` with ``fall >= bark_steep_fall``, or with both ``fall >= bark_fall`` and
``decay >= bark_decay``). Whispered speech (no f0) and sung
notes with vibrato are outside what this decides: the first is called no speech, the second speech (unless its
notes, held unbroken for ``unbroken_seconds``, lie above ``voice_f0_max``, span an octave or barely move). Numpy
only (plus soxr, webrtcvad and scipy.fft, which the features import anyway: pocketfft's C++ real transforms,
about a fifth faster than NumPy's on these frames), so the prediction path imports no scipy.signal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft as sfft

from voxemo.core.config import _Config
from voxemo.core.errors import ConfigError
from voxemo.dsp.signal import resample, row_power, to_full_scale, to_mono
from voxemo.dsp.vad import VAD_RATE, VadConfig, voiced_frames

#: Hop of the analysis, in samples at 16 kHz (10 ms).
HOP = 160
#: Pitch frame, in samples at 16 kHz (40 ms: two periods of a 50 Hz voice).
FRAME = 640
#: Frames analysed at once: bounds the tracker's memory (2,048 frames: about 60 MB) on inputs of any length.
BLOCK = 2048
#: f0 range of the pitch tracker (Hz).
F0_MIN, F0_MAX = 65.0, 600.0
#: Upper end of the wide pitch track (Hz): whistles, sirens and sweeps above a voice's range.
F0_WIDE_MAX = 2000.0
#: Five-hop f0 slope (semitones per 10 ms hop, falling) that counts as a fast fall, and the f0 step between
#: consecutive hops up to which such a fall is one track (a bark's onset falls faster than ``max_jump`` allows).
FAST_FALL, FALL_JUMP = 0.4, 2.0
#: Five-hop level slope (dB per 10 ms hop, falling) of a dying sound.
DECAY_DB = 0.5
#: Active seconds below which the level's spread says too little to call a sound steady.
LEVEL_SECONDS = 1.0

#: What :class:`SpeechPresence.reason` says when there is no speech; a detail follows after a colon.
NO_SPEECH = "no speech found"


@dataclass(frozen=True)
class SpeechConfig(_Config):
    """Thresholds of :func:`speech_presence`, chosen on the development half of ``benchmarks/speech_presence.py``
    (docs/results.md, "Speech or not").

    Attributes
    ----------
    floor_db : float
        Hops quieter than this (dBFS, mean square) are silence.
    range_db : float
        Hops more than this many dB below the loudest hop are background.
    clarity : float
        NSDF peak a hop needs to count as pitched (0..1).
    min_voiced : float
        Seconds of hops both the VAD and the pitch tracker call voiced that speech needs.
    max_jump : float
        f0 change between consecutive pitched hops, in semitones, above which the pair is a break (a new note, an
        octave error), not movement.
    min_move : float
        f0 slope (semitones per 10 ms hop, over five continuous hops) at or above which the pitch moves.
    min_movement : float
        Share of the five-hop slopes that move, for speech.
    max_flatness : float
        Median spectral flatness of the pitched hops above which the signal is noise.
    unbroken_seconds : float
        Seconds of unbroken (wide) pitch from which a run is longer than a voice's syllables.
    unbroken_span : float
        f0 span (semitones, 10th to 90th percentile) from which such a run is not a voice: a sweep.
    voice_f0_max : float
        Median f0 (Hz) above which such a run is not a voice: a whistle or siren.
    unbroken_movement : float
        Movement (as ``min_movement``, over the run alone) below which such a run is not a voice: a drone.
    max_unbroken : float
        Share of the wide-pitched hops in such runs from which the signal is a sweep, siren, whistle or engine.
    min_level_range : float
        Spread of the active hops' level (dB, 10th to 90th percentile) below which a sound active for at least
        ``LEVEL_SECONDS`` is steady: a machine, not a voice.
    bark_f0 : float
        Median f0 (Hz) of the pitched hops from which a sound may be a bark.
    bark_fall : float
        Share of five-hop windows falling by ``FAST_FALL`` semitones per hop or more from which it may be a bark.
    bark_decay : float
        Share of pitched hops whose level falls by ``DECAY_DB`` dB per hop or more from which it may be a bark; a
        sound meeting all three bark thresholds is one.
    bark_steep_fall : float
        Share of fast-falling windows from which a sound at ``bark_f0`` or above is a bark whatever its envelope (a
        burst that swells and fades as well as one that dies away); chosen at 1.7 times the largest share of the
        development half's speech (0.35), and above every speech clip measured (0.47).
    """

    floor_db: float = -60.0
    range_db: float = 40.0
    clarity: float = 0.6
    min_voiced: float = 0.1
    max_jump: float = 1.0
    min_move: float = 0.05
    min_movement: float = 0.1
    max_flatness: float = 0.3
    unbroken_seconds: float = 1.0
    unbroken_span: float = 12.0
    voice_f0_max: float = 700.0
    unbroken_movement: float = 0.3
    max_unbroken: float = 0.5
    min_level_range: float = 3.0
    bark_f0: float = 260.0
    bark_fall: float = 0.3
    bark_decay: float = 0.6
    bark_steep_fall: float = 0.6

    def __post_init__(self) -> None:
        if not 0 < self.clarity < 1 or not 0 <= self.min_movement <= 1 or not 0 < self.max_flatness <= 1:
            raise ConfigError("SpeechConfig.clarity, min_movement and max_flatness must be within (0, 1)")
        if self.min_voiced < 0 or self.range_db <= 0 or not 0 <= self.min_move < self.max_jump:
            raise ConfigError("SpeechConfig: min_voiced >= 0, range_db > 0 and 0 <= min_move < max_jump")
        for name in ("max_unbroken", "bark_fall", "bark_decay", "bark_steep_fall"):
            if not 0 < getattr(self, name) <= 1:
                raise ConfigError(f"SpeechConfig.{name}={getattr(self, name)!r} must be a share within (0, 1]")
        if not 0 <= self.unbroken_movement <= 1:
            raise ConfigError(f"SpeechConfig.unbroken_movement={self.unbroken_movement!r} must be within [0, 1]")
        for name in ("unbroken_seconds", "unbroken_span", "voice_f0_max", "bark_f0"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"SpeechConfig.{name}={getattr(self, name)!r} must be positive")
        if self.min_level_range < 0:
            raise ConfigError(f"SpeechConfig.min_level_range={self.min_level_range!r} must be >= 0 dB (0 turns the "
                              "steady-level check off)")


@dataclass(frozen=True)
class SpeechPresence:
    """The decision and the measurements behind it.

    Attributes
    ----------
    speech : bool
        Whether the signal holds speech.
    speech_seconds : float
        Seconds the VAD and the pitch tracker both call voiced.
    active_seconds : float
        Seconds above the level floor.
    movement : float
        Share of five-hop runs of continuous pitch whose f0 slope reaches ``min_move`` (0 for a steady tone).
    flatness : float
        Median spectral flatness of the pitched hops (1 = white noise, 0 = pure tones).
    reason : str
        ``""`` for speech; otherwise ``"no speech found: <why>"``.
    unbroken : float
        Share of the wide-pitched hops in long unbroken runs that are not a voice (0 for speech: syllables are short).
    level_range : float
        Spread of the active hops' level, dB (10th to 90th percentile).
    f0 : float
        Median f0 of the pitched hops, Hz (0 without any).
    fall : float
        Share of five-hop windows of the pitch track falling fast.
    decay : float
        Share of the pitched hops whose level is dying away.
    """

    speech: bool
    speech_seconds: float
    active_seconds: float
    movement: float
    flatness: float
    reason: str = ""
    unbroken: float = 0.0
    level_range: float = 0.0
    f0: float = 0.0
    fall: float = 0.0
    decay: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return {"speech": self.speech, "speech_seconds": self.speech_seconds, "active_seconds": self.active_seconds,
                "movement": self.movement, "flatness": self.flatness, "unbroken": self.unbroken,
                "level_range": self.level_range, "f0": self.f0, "fall": self.fall, "decay": self.decay,
                "reason": self.reason}


def _frames(y: np.ndarray, n_hops: int) -> np.ndarray:
    """(n_hops, FRAME) frames centred on every hop's middle (zero padded)."""
    padded = np.pad(y, (FRAME // 2, FRAME))
    starts = np.arange(n_hops) * HOP + HOP // 2
    return np.lib.stride_tricks.sliding_window_view(padded, FRAME)[starts]


def _nsdf(frames: np.ndarray, lags: int | None = None) -> np.ndarray:
    """McLeod's normalised square difference function of every frame, (n, lags) over lags 0 .. lags - 1 (all ``w``
    lags by default; each lag's value does not depend on how many are computed)."""
    n, w = frames.shape
    lags = w if lags is None else min(lags, w)
    x = frames - frames.mean(axis=1, keepdims=True)
    # zero-padded past w + lags, to a length pocketfft transforms fast: no lag below ``lags`` wraps
    spec = sfft.rfft(x, sfft.next_fast_len(w + lags, real=True), axis=1)
    acf = sfft.irfft(spec.real**2 + spec.imag**2, axis=1)[:, :lags]
    sq = np.cumsum(x**2, axis=1)
    total = sq[:, -1:]
    # m(tau) = sum_{j < w - tau} x_j^2 + x_{j + tau}^2
    head = np.concatenate([total, total - sq[:, : lags - 1]], axis=1)  # sum from tau to the end
    tail = np.concatenate([total, sq[:, ::-1][:, 1:lags]], axis=1)  # sum up to w - tau
    return np.asarray(2 * acf / np.maximum(head + tail, 1e-12))


def _pitch_tracks(frames: np.ndarray, sr: int, f0_maxes: tuple[float, ...]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(f0, clarity) of every frame for each upper f0 limit, read off one NSDF (see :func:`pitch_track`)."""
    n, w = frames.shape
    hi = min(int(sr / F0_MIN) + 1, w - 2)
    # only the lags a peak can be read at (and the one after it, for the interpolation): a first negative lag beyond
    # them leaves no valid peak, with or without the lags after it
    nsdf = _nsdf(frames, hi + 2)
    lo_all = int(sr / max(f0_maxes))
    negative = nsdf < 0
    first_neg = np.where(negative.any(axis=1), negative.argmax(axis=1), w)
    seg = nsdf[:, lo_all - 1 : hi + 2]
    tau = np.arange(lo_all, hi + 1)
    peak = (seg[:, 1:-1] >= seg[:, :-2]) & (seg[:, 1:-1] > seg[:, 2:])
    peak &= (tau[None, :] > first_neg[:, None]) & (seg[:, 1:-1] > 0)
    rows = np.arange(n)
    out = []
    for f0_max in f0_maxes:
        valid = peak & (tau >= int(sr / f0_max))[None, :]
        values = np.where(valid, seg[:, 1:-1], -np.inf)
        best = values.max(axis=1)
        chosen = valid & (values >= 0.9 * best[:, None])
        has = chosen.any(axis=1)
        k = tau[chosen.argmax(axis=1)]
        a, b, c = nsdf[rows, k - 1], nsdf[rows, k], nsdf[rows, k + 1]
        denom = a - 2 * b + c
        shift = np.where(np.abs(denom) > 1e-12, 0.5 * (a - c) / np.where(denom == 0, 1, denom), 0.0)
        shift = np.clip(shift, -0.5, 0.5)
        clarity = np.where(has, np.clip(b - 0.25 * (a - c) * shift, 0, 1), 0.0)
        out.append((np.where(has, sr / (k + shift), 0.0), clarity))
    return out


def pitch_track(frames: np.ndarray, sr: int = VAD_RATE, f0_max: float = F0_MAX) -> tuple[np.ndarray, np.ndarray]:
    """f0 (Hz) and clarity (0..1) of every frame by McLeod's NSDF: the first local maximum within 0.9 of the
    highest one, after the NSDF first goes negative, at an f0 of ``F0_MIN`` to ``f0_max``; clarity 0 where there is
    none."""
    return _pitch_tracks(frames, sr, (f0_max,))[0]


def _flatness(frames: np.ndarray, sr: int = VAD_RATE) -> np.ndarray:
    """Spectral flatness (geometric / arithmetic mean of the power spectrum, 300-4000 Hz) of every frame."""
    spectrum = sfft.rfft(frames * np.hanning(frames.shape[1]), axis=1)
    power = spectrum.real**2 + spectrum.imag**2
    freqs = np.fft.rfftfreq(frames.shape[1], 1 / sr)
    band = power[:, (freqs >= 300) & (freqs <= 4000)] + 1e-20
    return np.asarray(np.exp(np.mean(np.log(band), axis=1)) / np.mean(band, axis=1))


def _movement(f0: np.ndarray, pitched: np.ndarray, c: SpeechConfig) -> float:
    """Share of the hops, among those with a continuous pitch track from two hops before to two after, whose f0
    slope (least squares over the five hops) is at least ``min_move`` semitones per hop: jitter of a steady
    tone's estimate averages out, a glide does not."""
    semis = _semitones(f0)
    run = _continuous(semis, pitched, c.max_jump)
    if not run.any():
        return 0.0
    return float((run & (np.abs(_slopes(semis)) >= c.min_move)).sum() / run.sum())


def _semitones(f0: np.ndarray) -> np.ndarray:
    return np.asarray(12 * np.log2(np.maximum(f0, 1.0)))


def _continuous(semis: np.ndarray, pitched: np.ndarray, jump: float) -> np.ndarray:
    """Per hop: whether the five hops centred on it are pitched with every step between them below ``jump``
    semitones (one continuous track); False at the two ends."""
    run = np.zeros(len(semis), bool)
    if len(semis) >= 5:
        link = pitched[1:] & pitched[:-1] & (np.abs(np.diff(semis)) < jump)  # hop i and i + 1 are continuous
        run[2:-2] = link[:-3] & link[1:-2] & link[2:-1] & link[3:]
    return run


def _slopes(x: np.ndarray) -> np.ndarray:
    """Least-squares slope (per hop) of ``x`` over the five hops centred on each hop; 0 at the two ends."""
    out = np.zeros(len(x))
    if len(x) >= 5:
        out[2:-2] = np.lib.stride_tricks.sliding_window_view(x, 5) @ np.arange(-2.0, 3.0) / 10.0
    return out


def _runs(mask: np.ndarray) -> np.ndarray:
    """(start, stop) of every run of consecutive True in ``mask``, shape (n_runs, 2)."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return np.stack([np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)], axis=1)


def _unbroken(f0_wide: np.ndarray, wide: np.ndarray, f0: np.ndarray, pitched: np.ndarray, c: SpeechConfig) -> float:
    """Share of the ``wide`` pitched hops in unbroken runs of at least ``unbroken_seconds`` that are not a voice: f0
    (wide track) spanning ``unbroken_span`` semitones (10th to 90th percentile) or above ``voice_f0_max`` (median),
    or movement (voice-range track) within the run below ``unbroken_movement``."""
    if not wide.any():
        return 0.0
    semis = _semitones(f0_wide)
    long = int(np.ceil(c.unbroken_seconds * VAD_RATE / HOP))
    held = 0
    for start, stop in _runs(wide):
        if stop - start < long:
            continue
        lo, hi = np.percentile(semis[start:stop], [10, 90])
        if (hi - lo >= c.unbroken_span or np.median(f0_wide[start:stop]) > c.voice_f0_max
                or _movement(f0[start:stop], pitched[start:stop], c) < c.unbroken_movement):
            held += stop - start
    return held / int(wide.sum())


def _fall(f0: np.ndarray, pitched: np.ndarray) -> float:
    """Share of the five-hop windows of pitched hops, continuous to within ``FALL_JUMP`` semitones, whose f0
    falls by ``FAST_FALL`` semitones per hop or more."""
    semis = _semitones(f0)
    run = _continuous(semis, pitched, FALL_JUMP)
    if not run.any():
        return 0.0
    return float((run & (_slopes(semis) <= -FAST_FALL)).sum() / run.sum())


def _blocks(hops: np.ndarray, size: int = BLOCK) -> list[np.ndarray]:
    """``hops`` cut into consecutive blocks of at most ``size``."""
    return [hops[i : i + size] for i in range(0, len(hops), size)]


def speech_presence(y: np.ndarray, sr: int, config: SpeechConfig | None = None,
                    vad: VadConfig | None = None) -> SpeechPresence:
    """Whether ``y`` (shape (n,) or (n, channels), float in [-1, 1], at ``sr`` Hz) holds speech.

    Pure: the same array gives the same decision. See the module's description for the features.
    """
    c = config or SpeechConfig()
    mono = to_mono(np.asarray(y))
    if mono.size == 0 or not np.all(np.isfinite(mono)):
        return SpeechPresence(False, 0.0, 0.0, 0.0, 0.0, f"{NO_SPEECH}: no usable samples")
    mono = to_full_scale(mono)  # as the features hear it (a float file may exceed full scale)
    x = resample(mono, int(sr), VAD_RATE) if int(sr) != VAD_RATE else mono.astype(np.float32, copy=False)
    n_hops = len(x) // HOP
    if n_hops < 3:
        return SpeechPresence(False, 0.0, 0.0, 0.0, 0.0, f"{NO_SPEECH}: too short")
    hops = x[: n_hops * HOP].reshape(n_hops, HOP)
    db = 10 * np.log10(row_power(hops) + 1e-12)
    active = (db >= c.floor_db) & (db >= db.max() - c.range_db)
    active_s = round(float(active.sum()) * HOP / VAD_RATE, 3)
    if not active.any():
        return SpeechPresence(False, 0.0, 0.0, 0.0, 0.0, f"{NO_SPEECH}: silence")
    vad_cfg = vad or VadConfig()
    per = vad_cfg.frame_ms * VAD_RATE // 1000 // HOP
    vad_hops = np.repeat(voiced_frames(x, vad_cfg), per)[:n_hops]
    vad_hops = np.concatenate([vad_hops, np.zeros(n_hops - len(vad_hops), bool)])
    # float32 views, each block analysed in float32: float64 gave the same measurements (to their 4 reported
    # decimals) on all 4,069 clips of benchmarks/speech_presence.py, at 1.4x the cost
    frames = _frames(x, n_hops)
    # pitch only where it can count (pitched hops are active): the same numbers, frame for frame, at well under half
    # the cost on clips with pauses (the tracker's FFTs were three quarters of a prediction's time)
    f0, clarity = np.zeros(n_hops), np.zeros(n_hops)
    f0_wide, clarity_wide = np.zeros(n_hops), np.zeros(n_hops)
    for block in _blocks(np.flatnonzero(active)):  # in blocks: a 10-minute file's frames and FFTs would be GBs
        (f0[block], clarity[block]), (f0_wide[block], clarity_wide[block]) = _pitch_tracks(
            np.array(frames[block], np.float32), VAD_RATE, (F0_MAX, F0_WIDE_MAX))
    pitched = active & (clarity >= c.clarity)
    voiced = pitched & vad_hops
    speech_s = round(float(voiced.sum()) * HOP / VAD_RATE, 3)
    movement = round(_movement(f0, pitched, c), 4)
    flatness = [_flatness(np.array(frames[block], np.float32)) for block in _blocks(np.flatnonzero(pitched))]
    flat = round(float(np.median(np.concatenate(flatness))) if pitched.any() else 1.0, 4)
    unbroken = round(_unbroken(f0_wide, active & (clarity_wide >= c.clarity), f0, pitched, c), 4)
    level = np.percentile(db[active], [10, 90])
    level_range = round(float(level[1] - level[0]), 2)
    median_f0 = round(float(np.median(f0[pitched])) if pitched.any() else 0.0, 1)
    fall = round(_fall(f0, pitched), 4)
    decay = round(float((pitched & (_slopes(db) <= -DECAY_DB)).sum() / max(int(pitched.sum()), 1)), 4)
    if speech_s < c.min_voiced:
        why = "no voice (noise, clicks or silence)" if not pitched.any() else "too little voice"
    elif flat > c.max_flatness:
        why = "noise"
    elif movement < c.min_movement:
        why = "steady pitch (a tone, hum or music)"
    elif unbroken >= c.max_unbroken:
        why = "one long unbroken pitch (a sweep, siren, whistle or engine)"
    elif level_range < c.min_level_range and active_s >= LEVEL_SECONDS:
        why = "steady level (a siren, alarm or machine)"
    elif median_f0 >= c.bark_f0 and (fall >= c.bark_steep_fall or (fall >= c.bark_fall and decay >= c.bark_decay)):
        why = "high, fast-falling, dying bursts (a bark or yelp)"
    else:
        why = ""
    return SpeechPresence(not why, speech_s, active_s, movement, flat, f"{NO_SPEECH}: {why}" if why else "",
                          unbroken=unbroken, level_range=level_range, f0=median_f0, fall=fall, decay=decay)
