"""``voxemo timeline`` and ``voxemo listen``: emotion over time in a recording or from the microphone (registered by
:mod:`voxemo.apps.cli`)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from voxemo.apps.arguments import positive
from voxemo.core.errors import VoxemoError

if TYPE_CHECKING:
    from voxemo.inference.stream import Update


def cmd_timeline(args: argparse.Namespace) -> int:
    import json

    from voxemo.inference.loading import load_model
    from voxemo.inference.timeline import timeline
    from voxemo.reports.timeline import write_csv

    if args.adapt:
        from voxemo.core.extras import require

        require("torch", "voxemo timeline --adapt")
    result = timeline(args.file, load_model(args.model), window=args.window, hop=args.hop, adapt=args.adapt,
                      progress=args.progress)
    if args.plot:
        from voxemo.reports.plots import plot_timeline

        try:
            plot_timeline(result, args.plot)
        except (OSError, ValueError) as exc:
            raise VoxemoError(f"{args.plot}: cannot write the plot ({exc})") from None
    if args.json:
        print(json.dumps(result.to_dict(windows=False)))
    elif args.csv:
        write_csv(result, sys.stdout)
    elif not result.segments:
        print(f"{result.path}: no speech found in {result.duration:.1f} s", file=sys.stderr)
    else:
        print("start\tend\temotion\tconfidence")  # seconds; tab-separated, as the README shows
        for s in result.segments:
            print(f"{s.start:.2f}\t{s.end:.2f}\t{s.emotion}\t{s.confidence:.2f}")
    return 0


def cmd_listen(args: argparse.Namespace) -> int:
    import json

    from voxemo.apps.listen import format_update, listen
    from voxemo.inference.loading import load_model

    model = load_model(args.model)

    def show(update: Update) -> None:
        print(json.dumps(update.to_dict()) if args.json else format_update(update), flush=True)

    listen(model, show, device=args.device, window=args.window, hop=args.hop, seconds=args.seconds,
           adapt=args.adapt or 0.0)
    return 0


def _device(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def add_recording_parsers(sub: argparse._SubParsersAction) -> None:
    def window_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--model", help="model folder (default: the pretrained model shipped with voxemo)")
        sp.add_argument("--window", type=positive, help="seconds per classified window (default: the model's 3 s)")
        sp.add_argument("--hop", type=positive, help="seconds between window starts (default: half the window)")

    s = sub.add_parser("timeline", help="emotion over time in a long recording: speech segments and a plot")
    s.add_argument("file", metavar="FILE", help="audio file of any length (read block by block)")
    window_args(s)
    out = s.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help='print {"path", "duration", "segments": [...]} as JSON')
    out.add_argument("--csv", action="store_true", help="print the segments as CSV, one column per class")
    s.add_argument("--plot", metavar="PNG", help="also draw the probabilities over time into this PNG")
    s.add_argument("--adapt", action="store_true",
                   help="read the file twice: adapt the model without labels to its own speech, then classify")
    s.set_defaults(func=cmd_timeline)

    s = sub.add_parser("listen", help="live emotion from the microphone, one line per window (Ctrl-C stops)")
    window_args(s)
    s.add_argument("--device", type=_device, help="input device index or name (default: the system's default)")
    s.add_argument("--seconds", type=positive, help="stop after this many seconds (default: until Ctrl-C)")
    s.add_argument("--json", action="store_true", help="one JSON object per update")
    s.add_argument("--adapt", type=positive, metavar="S",
                   help="adapt the model without labels to the voice heard after S seconds of speech, and again each "
                        "time the speech heard doubles")
    s.set_defaults(func=cmd_listen)
