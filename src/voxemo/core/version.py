"""The package version, from the installed distribution's metadata (one place for every caller)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _distribution_version


def version() -> str:
    """voxemo's version, or ``"0+unknown"`` when running from a source tree that is not installed."""
    try:
        return _distribution_version("voxemo")
    except PackageNotFoundError:
        return "0+unknown"


__version__ = version()
