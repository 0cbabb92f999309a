"""Argument types and shared arguments of the command line: numbers that argparse would take as any int or float
(``-3`` processes, ``nan`` seconds) checked where they are parsed, so a bad value is one line of usage, never a
traceback later; and the arguments several subcommands share (a corpus, an engine, training overrides).
"""

from __future__ import annotations

import argparse
import math


def _number(text: str, kind: type[int] | type[float]) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def count(text: str) -> int:
    """An integer ≥ 0 (``--jobs 0``: one per core).

    >>> count("2")
    2
    """
    value = int(_number(text, int))
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} cannot be negative")
    return value


def positive_int(text: str) -> int:
    """An integer ≥ 1."""
    value = int(_number(text, int))
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def port(text: str) -> int:
    """A TCP port, 0-65535 (0: any free port)."""
    value = count(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0-65535)")
    return value


def seconds(text: str) -> float:
    """A finite number ≥ 0 (``nan``, ``inf`` and ``-5`` are refused).

    >>> seconds("2.5")
    2.5
    """
    value = float(_number(text, float))
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} cannot be negative")
    return value


def positive(text: str) -> float:
    """A finite number > 0."""
    value = seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be above 0")
    return value


def probability(text: str) -> float:
    """A number in [0, 1]."""
    value = seconds(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a probability (0-1)")
    return value


def shots(text: str) -> list[int]:
    """Comma-separated clips per class, each ≥ 0 (``--shots 0,5,10``)."""
    try:
        ks = [int(k) for k in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None
    if any(k < 0 for k in ks):
        raise argparse.ArgumentTypeError(f"{text!r}: clips per class cannot be negative")
    return ks


# ---- arguments several subcommands share ------------------------------------------------------------------------
def corpus_arg(sp: argparse.ArgumentParser) -> None:
    from voxemo.corpus import CORPORA  # the corpus floor: imported when the parser is built, not at start-up

    sp.add_argument("--corpus", choices=CORPORA, help="the corpus' naming convention (default: detected)")


def data_arg(sp: argparse.ArgumentParser, positional: bool) -> None:
    """One corpus (``DATA`` or ``--data``), its naming convention and the feature-extraction processes."""
    help_ = ("corpus folder, zip or CSV manifest (see voxemo corpus --help); without it RAVDESS from "
             "$VOXEMO_DATA, else a downloaded copy, else download it")
    if positional:
        sp.add_argument("data", nargs="?", help=help_)
    else:
        sp.add_argument("--data", help=help_)
    corpus_arg(sp)
    sp.add_argument("--jobs", type=count, default=0, help="processes for feature extraction (0 = all cores)")


def engine_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--engine", choices=["local", "ray"], default="local",
                    help="local: processes on this machine (default); ray: a Ray cluster (pip install "
                         "'voxemo[ray]'; see docs/usage.md, 'On a Ray cluster')")
    sp.add_argument("--address", metavar="ADDR", help="with --engine ray: the cluster's address, e.g. "
                    "10.0.0.1:6379 (default: $RAY_ADDRESS, else a Ray runtime on this machine)")


def training_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--epochs", type=positive_int, help="maximum epochs per training")
    sp.add_argument("--threads", type=positive_int, help="torch threads per training (default 1: the same numbers "
                    "on any machine; more is faster, and the results then differ in the last bits)")
    sp.add_argument("--set", action="append", metavar="SECTION.FIELD=VALUE",
                    help="override a config field, e.g. --set augment.copies=0 --set model.pooling=attention "
                         "(repeatable; sections: audio, features, model, train, augment)")
