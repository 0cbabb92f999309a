"""``voxemo adapt``: its arguments, and the one library call it makes (kept beside :mod:`voxemo.apps.cli`, which
registers it)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from voxemo.apps.arguments import count, seconds

if TYPE_CHECKING:
    from voxemo.inference.adaptset import AdaptationRecord

ADAPT_HELP = ("adapt the model to the recordings being predicted first, without labels (normalisation statistics "
              "re-measured on their speech; see voxemo adapt)")


def add_adapt_parser(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("adapt", help="adapt a model to your own recordings (no labels needed) and save it as a new "
                                     "model folder")
    s.add_argument("paths", nargs="*", metavar="AUDIO",
                   help="recordings of the setting to adapt to, no labels needed: files, folders (walked recursively) "
                        "or manifests")
    s.add_argument("--labelled", metavar="DATA",
                   help="then fine-tune on these labelled clips: a corpus folder or a CSV/JSONL manifest with path "
                        "and emotion columns (a few per emotion is enough)")
    s.add_argument("--corpus", help="the naming convention of --labelled (default: detected)")
    s.add_argument("--model", help="model folder to adapt (default: the pretrained model shipped with voxemo)")
    s.add_argument("--out", required=True, help="folder to write the adapted model to (a complete model folder)")
    s.add_argument("--jobs", type=count, default=0, help="processes reading the recordings (0 = all cores)")
    prior_args(s)
    s.set_defaults(func=cmd_adapt)


def adapt_by_arg(s: argparse.ArgumentParser) -> None:
    s.add_argument("--adapt-by", metavar="COLUMN", help="adapt (implies --adapt) a copy of the model to each group of "
                   "inputs sharing this manifest column, e.g. speaker (one voice at a time)")


def prior_args(s: argparse.ArgumentParser) -> None:
    """The shrinkage and minimum options, shared by every command that adapts."""
    from voxemo.core.config import ADAPT_MIN_SECONDS as MIN_SECONDS
    from voxemo.core.config import ADAPT_PRIOR_SECONDS as PRIOR_SECONDS

    s.add_argument("--prior-seconds", type=seconds, metavar="S",
                   help=f"seconds of speech at which the recordings and the training data weigh equally "
                        f"(default {PRIOR_SECONDS:g}; 0 = the recordings alone)")
    s.add_argument("--min-seconds", type=seconds, metavar="S",
                   help=f"refuse to adapt on less speech than this (default {MIN_SECONDS:g})")


def needs_torch(model: str | None) -> bool:
    """Whether adapting ``model`` (a folder, a shipped model's name or None for the default) needs torch: a CNN
    does; an encoder-family model (whisper, voice) adapts with ONNX Runtime and NumPy."""
    from voxemo.inference.loading import model_path
    from voxemo.inference.probe_backend import is_probe_folder

    return not is_probe_folder(model_path(model))


def cmd_adapt(args: argparse.Namespace) -> int:
    from voxemo.core.extras import require

    if needs_torch(args.model):
        require("torch", "voxemo adapt")  # before any file is read
    from voxemo.workflows.adaptation import adapt_model

    labelled = []
    if args.labelled:
        from voxemo.corpus.sources import load_source

        labelled = load_source(args.labelled, args.corpus, progress=args.progress)
    clf = adapt_model(args.paths, args.out, model=args.model, labelled=labelled, jobs=args.jobs,
                      prior_seconds=args.prior_seconds, min_seconds=args.min_seconds, progress=args.progress)
    print(f"{describe(clf.adaptation)}; saved {args.out}" if clf.adaptation else f"saved {args.out}")
    return 0


def describe(record: AdaptationRecord) -> str:
    """One line for an adaptation record (and the one before it)."""
    if record.labelled:
        line = f"fine-tuned on {record.clips} labelled clips ({record.skipped} skipped)"
        return f"{describe(record.previous)}, then {line}" if record.previous else line
    return (f"adapted on {record.clips} clips ({(record.speech_seconds or 0.0) / 60:.1f} min of speech; "
            f"{record.skipped} skipped), weight {record.weight or 0.0:.2f}")
