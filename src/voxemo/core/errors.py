"""Exceptions raised by voxemo.

Every error the package raises on purpose derives from :class:`VoxemoError`, so a caller (the CLI, the HTTP
service, a batch job) can catch one class and print a one-line message.
"""

from __future__ import annotations


class VoxemoError(Exception):
    """Base class of every error voxemo raises on purpose."""


class ConfigError(VoxemoError, ValueError):
    """A configuration value is out of range or inconsistent."""


class AudioError(VoxemoError):
    """An audio file or array cannot be used (unreadable, empty, silent, too short, non-finite...)."""


class NoSpeechError(AudioError):
    """An input holds no speech (noise, tones, music, silence): voxemo predicts no emotion for it."""


class CorpusError(VoxemoError):
    """A corpus folder, archive or file name does not follow the expected layout or naming convention."""


class ModelError(VoxemoError):
    """A model directory is missing, incomplete or incompatible."""


class AdaptationError(VoxemoError):
    """A set of recordings to adapt a model to cannot be used (empty, no speech, too little, unreadable)."""


class DownloadError(VoxemoError):
    """A download failed or its result did not verify."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when the message is empty): what a one-line
    error shows of a third-party library's multi-line message."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
