"""On-disk feature cache keyed by audio content and preprocessing config, and parallel extraction.

An entry's key is the SHA-256 of the file's bytes combined with a hash of the audio and feature configs and
:data:`~voxemo.dsp.features.FEATURE_VERSION`; a changed config or file therefore never reuses a stale entry.
Entries are written to a temporary file and renamed into place, so a killed run leaves no partial entry.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from voxemo.core.config import AudioConfig, AugmentConfig, FeatureConfig
from voxemo.core.errors import AudioError
from voxemo.core.parallel import pmap
from voxemo.dsp.augment import augment_digest, augment_signal
from voxemo.dsp.channel import simulate
from voxemo.dsp.features import config_digest, extract
from voxemo.dsp.signal import to_mono
from voxemo.io.audio import load_audio
from voxemo.io.files import atomic_path, file_digest


def default_cache_dir() -> Path:
    """``$VOXEMO_CACHE``, else ``$XDG_CACHE_HOME/voxemo``, else ``~/.cache/voxemo``."""
    if os.environ.get("VOXEMO_CACHE"):
        return Path(os.environ["VOXEMO_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "voxemo"


class FeatureCache:
    """Feature arrays stored as ``<root>/<config digest>/<aa>/<content digest>.npy`` (float16)."""

    def __init__(self, root: str | os.PathLike[str], audio: AudioConfig, features: FeatureConfig) -> None:
        self.root = Path(root) / config_digest(audio, features)

    def entry(self, content_digest: str) -> Path:
        return self.root / content_digest[:2] / f"{content_digest}.npy"

    def get(self, content_digest: str) -> np.ndarray | None:
        path = self.entry(content_digest)
        try:
            return np.load(path, allow_pickle=False).astype(np.float32)
        except (OSError, ValueError, EOFError):
            return None  # missing or unreadable: recompute (a later put replaces it)

    def put(self, content_digest: str, spec: np.ndarray) -> np.ndarray:
        """Store ``spec`` and return it exactly as :meth:`get` will return it later (float16-rounded), so a
        run on a cold cache and one on a warm cache see identical features and train identically."""
        path = self.entry(content_digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        stored = spec.astype(np.float16)
        with atomic_path(path, ".tmp.npy") as tmp:
            np.save(tmp, stored, allow_pickle=False)
        return stored.astype(np.float32)


def cache_root(cache_dir: str | os.PathLike[str] | None) -> str | None:
    """The cache folder for a ``cache_dir`` argument: ``None`` means :func:`default_cache_dir`, ``""`` no cache."""
    return None if cache_dir == "" else str(cache_dir if cache_dir is not None else default_cache_dir())


def _features_for(
    job: tuple[str, AudioConfig, FeatureConfig, AugmentConfig | None, str | None, str],
) -> np.ndarray | list[np.ndarray] | str:
    """Worker: the features of one file (``aug`` None), or its ``aug.copies`` augmented feature copies, from the
    cache when present; the file is read only when something is missing. A ``channel`` other than ``"wideband"``
    passes the file through that simulated channel first (:func:`voxemo.dsp.channel.simulate`: test conditions,
    cached apart). Returns an error message on failure."""

    path, audio, features, aug, root, channel = job
    try:
        cache = FeatureCache(root, audio, features) if root else None
        digest = file_digest(path) if cache or aug else ""
        keys = [digest] if aug is None else [f"{digest}-aug{augment_digest(aug)}-{i}" for i in range(aug.copies)]
        keys = keys if channel == "wideband" else [f"{k}-{channel}" for k in keys]
        specs = [cache.get(k) if cache else None for k in keys]
        if any(s is None for s in specs):
            y, sr = load_audio(path, max_duration=audio.max_duration)
            if channel != "wideband":

                y, sr = simulate(to_mono(y), sr, channel), sr
            for i, key in enumerate(keys):
                if specs[i] is not None:
                    continue
                augment = None
                if aug is not None:
                    rng = np.random.default_rng([aug.seed, int(digest[:15], 16), i])
                    augment = lambda sig, rate, rng=rng: augment_signal(sig, rate, aug, rng)  # noqa: E731
                spec = extract(y, sr, audio, features, name=str(path), augment=augment)
                specs[i] = cache.put(key, spec) if cache else spec
        return specs[0] if aug is None else specs  # type: ignore[return-value]
    except AudioError as exc:
        return str(exc)
    except OSError as exc:
        return f"{path}: {exc.strerror or exc}"


def extract_augmented(
    paths: Iterable[str],
    audio: AudioConfig,
    features: FeatureConfig,
    aug: AugmentConfig,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    jobs: int = 0,
    progress: bool = True,
) -> list[list[np.ndarray] | str]:
    """``aug.copies`` augmented feature arrays per file (training only), in input order, cached like
    :func:`extract_many`; a file that fails gives its one-line error message instead of a list."""
    work = [(str(p), audio, features, aug, cache_root(cache_dir), "wideband") for p in paths]
    return pmap(_features_for, work, jobs=jobs, desc="augment", progress=progress, chunksize=4)  # type: ignore[arg-type]


def extract_many(
    paths: Iterable[str],
    audio: AudioConfig,
    features: FeatureConfig,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    jobs: int = 0,
    progress: bool = True,
    channel: str = "wideband",
) -> list[np.ndarray | str]:
    """Features of many files, in input order, using ``jobs`` processes (0 = all cores) and the cache.

    ``cache_dir=None`` uses :func:`default_cache_dir`; pass ``""`` to disable caching. Each result is
    either a float32 array (n_mels, n_frames) or a one-line error message naming the file. ``channel`` (test
    conditions: ``"telephone"``) passes every file through a simulated channel first.
    """
    work = [(str(p), audio, features, None, cache_root(cache_dir), channel) for p in paths]
    return pmap(_features_for, work, jobs=jobs, desc="features", progress=progress)  # type: ignore[arg-type]
