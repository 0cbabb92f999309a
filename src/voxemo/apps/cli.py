"""The ``voxemo`` command. Each subcommand parses its arguments and calls one library function."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from voxemo.apps.arguments import (
    corpus_arg,
    count,
    data_arg,
    engine_args,
    positive_int,
    probability,
    shots,
    training_args,
)
from voxemo.apps.serve_cli import BACKEND_HELP
from voxemo.core.errors import VoxemoError
from voxemo.core.extras import missing_extra_message, require
from voxemo.core.reproducible import pin_cpu_kernels
from voxemo.core.version import version


def _config(args: argparse.Namespace, like: str | None = None) -> Any:
    """The default Config of ``--model`` (the CNN's, or an encoder family's analysis; with ``like``, that trained
    model's own) with the CLI's overrides (seed, epochs, ``--channel``, then each ``--set``). ``--threads`` is a run
    setting, passed to the workflows, not part of the recipe saved with a model."""
    from voxemo.core.config import Config, apply_overrides
    from voxemo.nn.probe import FAMILIES

    model = getattr(args, "model", None) or "cnn"
    cfg = FAMILIES[model].config() if model in FAMILIES else Config()
    if like is not None:
        from voxemo.inference.loading import load_model

        cfg = load_model(like).config
        if cfg.model.arch != "cnn" or model != "cnn":
            from voxemo.core.errors import ConfigError

            raise ConfigError("--like repeats a CNN's recipe (e.g. --like fast); an encoder family has no epochs or "
                              "variant to repeat: train it with --model FAMILY")
    train = {"seed": args.seed}
    if getattr(args, "epochs", None):
        train["epochs"] = args.epochs
    cfg = cfg.replace(train=cfg.train.replace(**train))
    if getattr(args, "channel", None) == "telephone":  # the shipped telephone models' share of line copies
        cfg = cfg.replace(augment=cfg.augment.replace(telephone=1.0 if model in FAMILIES else 0.3))
    cfg = apply_overrides(cfg, getattr(args, "set", None) or [])
    if cfg.model.arch != (model if model in FAMILIES else "cnn"):
        from voxemo.core.errors import ConfigError

        raise ConfigError(f"model.arch={cfg.model.arch} is not trained here: choose the family with --model "
                          f"({', '.join(['cnn', *FAMILIES])}), not --set model.arch")
    return cfg


def _records(data: str | None, progress: bool, corpus: str | None = None) -> Any:
    from voxemo.corpus.sources import load_source

    return load_source(data, corpus, progress=progress)


def _records_many(data: Sequence[str], progress: bool, corpora: Sequence[str] | None = None) -> Any:
    from voxemo.corpus.sources import load_sources

    return load_sources(data, corpora, progress=progress)


def cmd_run(args: argparse.Namespace) -> int:
    from voxemo.workflows.study import run_study

    records = _records(args.data, args.progress, args.corpus)
    report = run_study(records, args.out, _config(args), random_protocol=args.with_random,
                       jobs=args.jobs, threads=args.threads or 1, progress=args.progress)
    from voxemo.reports.study import headline

    print(f"{headline(report.to_dict())}; report: {Path(args.out) / 'report.md'}; model: {Path(args.out) / 'model'}")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from voxemo.corpus.download import RAVDESS_URL, default_data_dir, download_ravdess

    folder = download_ravdess(args.dest or default_data_dir(), url=args.url or RAVDESS_URL, progress=args.progress)
    print(folder)
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from voxemo.core.config import AudioConfig
    from voxemo.workflows.analysis import analyze

    summary = analyze(_records(args.data, args.progress, args.corpus), args.out, audio=AudioConfig(), jobs=args.jobs,
                      progress=args.progress)
    rec = summary["recommended"]
    print(f"recommended top_db={rec['top_db']} duration={rec['duration']} s; report: {Path(args.out) / 'report.md'}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from voxemo.corpus.sources import leave_out
    from voxemo.workflows.training import train_like, train_recipe

    records = leave_out(_records_many(args.data, args.progress, args.corpus), args.leave_out or "")
    run = {"jobs": args.jobs, "threads": args.threads or 1, "progress": args.progress,
           "onnx": "only" if args.onnx_only else True}
    if args.like:
        s = train_like(records, args.like, _config(args, like=args.like), args.out, epochs=args.epochs, **run)
    else:
        s = train_recipe(records, _config(args), args.out, calibration_from=args.calibration_from, **run)
    done = f"chose {s.chosen}; trained on {s.n_clips} clips ({', '.join(s.corpora)}) for {s.epochs} epochs" \
        if s.epochs else f"trained a {s.chosen} on {s.n_clips} clips ({', '.join(s.corpora)})"
    print(f"{done}, {len(s.labels)} classes; saved {s.out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from voxemo.core.errors import ConfigError

    cfg = _config(args)
    if args.trained:
        if not args.test or args.train or args.data:
            raise ConfigError("--trained MODEL scores a trained model: give --test DATA... (and no --train or DATA)")
        return _trained(args)
    if args.train or args.test:
        if not (args.train and args.test) or args.data:
            raise ConfigError("cross-corpus evaluation needs --train DATA... and --test DATA... (and no DATA)")
        if args.engine != "local":
            raise ConfigError("--engine ray runs the folds of a protocol; a cross-corpus run trains one model, "
                              "locally: leave out --engine")
        return _cross_corpus(args, cfg)
    if args.engine == "ray":  # name the extra that brings Ray before the corpus is read
        require("ray", "voxemo evaluate --engine ray")
    if args.model == "egemaps-svm":  # name the extra that brings openSMILE before anything else is imported
        require("opensmile", "voxemo evaluate --model egemaps-svm")
    from voxemo.workflows.evaluation import run_evaluation

    if args.shots:
        raise ConfigError("--shots is a cross-corpus protocol: give --train DATA... --test DATA...")
    result = run_evaluation(_records(args.data, args.progress, args.corpus), cfg, args.protocol, args.out,
                            model=args.model, adapt=args.adapt, channel=args.test_channel, jobs=args.jobs,
                            threads=args.threads or 1, progress=args.progress, engine=args.engine,
                            address=args.address)
    s = result.summary
    print(f"{args.protocol}{' adapted' if args.adapt else ''}: accuracy {s.accuracy.mean:.3f} ± {s.accuracy.std:.3f}, "
          f"UAR {s.uar.mean:.3f} ± {s.uar.std:.3f}, macro-F1 {s.macro_f1.mean:.3f}; "
          f"report: {Path(args.out) / 'report.md'}")
    return 0


def _cross_corpus(args: argparse.Namespace, cfg: Any) -> int:
    """``voxemo evaluate --train DATA... --test DATA...``: corpora detected, or ``--corpus`` for all of them."""
    from voxemo.workflows.crosscorpus import run_cross_corpus

    corpus = [args.corpus] if args.corpus else None
    result = run_cross_corpus(_records_many(args.train, args.progress, corpus),
                              _records_many(args.test, args.progress, corpus), cfg, args.out, adapt=args.adapt,
                              shots=args.shots or (), draws=args.draws, channel=args.test_channel, jobs=args.jobs,
                              threads=args.threads or 1, progress=args.progress)
    return _print_cross_corpus(result, " + ".join(result.train), args.out)


def _trained(args: argparse.Namespace) -> int:
    """``voxemo evaluate --trained MODEL --test DATA...``: score a trained model, train nothing."""
    from voxemo.workflows.crosscorpus import run_trained

    corpus = [args.corpus] if args.corpus else None
    result = run_trained(args.trained, _records_many(args.test, args.progress, corpus), args.out, adapt=args.adapt,
                         shots=args.shots or (), draws=args.draws, channel=args.test_channel, jobs=args.jobs,
                         seed=args.seed, progress=args.progress)
    return _print_cross_corpus(result, str(result.model), args.out)


def _print_cross_corpus(result: Any, source: str, out: str) -> int:
    from voxemo.reports.crosscorpus import summary_line

    print(summary_line(result, source, out))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from voxemo.inference.batch import predict_batch

    fmt = "json" if args.json else "csv" if args.csv else "text"
    if fmt == "text" and args.output:
        suffix = Path(args.output.rstrip("/")).suffix.lower()
        fmt = "csv" if suffix == ".csv" else "parquet" if suffix == ".parquet" else "json"
    adapt = None
    if args.adapt or args.adapt_by:  # --adapt-by implies --adapt
        from voxemo.apps.adapt_cli import needs_torch
        from voxemo.inference.selfadapt import AdaptOptions

        if needs_torch(args.model):
            require("torch", "voxemo predict --adapt")  # before any file is read
        adapt = AdaptOptions(by=args.adapt_by, prior_seconds=args.prior_seconds, min_seconds=args.min_seconds)
    summary = predict_batch(args.paths, model=args.model, backend=args.backend, fmt=fmt, output=args.output,
                            resume=args.resume, jobs=args.jobs, progress=args.progress,
                            min_confidence=args.min_confidence, engine=args.engine, address=args.address, adapt=adapt)
    if args.output and not args.quiet:
        skipped = f"; skipped {summary.skipped} already there ({summary.skipped_failed} failed)" if args.resume else ""
        unlabelled = (f"; {summary.no_speech} without speech, {summary.uncertain} uncertain"
                      if summary.no_speech or summary.uncertain else "")
        print(f"predicted {summary.predicted} inputs ({summary.failed} failed) into {args.output}{skipped}{unlabelled}",
              file=sys.stderr)
    return 1 if summary.any_failed else 0


def cmd_export(args: argparse.Namespace) -> int:
    from voxemo.inference.loading import load_model
    from voxemo.inference.torch_backend import export_onnx

    out = export_onnx(load_model(args.model, backend="torch"), args.onnx)
    print(out)
    return 0


def cmd_corpus(args: argparse.Namespace) -> int:
    import json

    from voxemo.corpus import corpus_summary, format_summary, load_corpus
    from voxemo.io.manifest import write_manifest

    records = load_corpus(Path(args.path).expanduser(), args.corpus)
    summary = corpus_summary(records)
    print(json.dumps(summary) if args.json else format_summary(summary))
    if args.manifest:
        print(f"wrote {write_manifest(records, args.manifest)}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from voxemo.apps.adapt_cli import add_adapt_parser
    from voxemo.apps.recording_cli import add_recording_parsers
    from voxemo.apps.serve_cli import add_serve_parser

    p = argparse.ArgumentParser(prog="voxemo", description="Speech emotion recognition: train, evaluate, predict.")
    p.add_argument("--seed", type=int, default=0, help="random seed for splits and training (default 0)")
    p.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or info logs")
    p.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_study_parsers(sub)
    _add_train_parser(sub)
    _add_evaluate_parser(sub)
    _add_predict_parser(sub)
    add_adapt_parser(sub)
    _add_export_parser(sub)
    add_serve_parser(sub)
    add_recording_parsers(sub)
    return p


def _add_study_parsers(sub: Any) -> None:
    """``run``, ``download``, ``corpus``, ``analyze``."""
    from voxemo.corpus.registry import DESCRIPTIONS

    s = sub.add_parser("run", help="the whole study: analysis, variants, evaluation, final model, report")
    data_arg(s, positional=False)
    s.add_argument("--out", default="runs/study", help="output folder (default runs/study)")
    training_args(s)
    s.add_argument("--with-random", action="store_true",
                   help="also evaluate the leaking random clip split, for contrast (one more training)")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("download", help="download a corpus")
    s.add_argument("corpus", choices=["ravdess"])
    s.add_argument("--dest", help="folder to download into (default: $VOXEMO_HOME/data or ~/.cache/voxemo/data)")
    s.add_argument("--url", help=argparse.SUPPRESS)
    s.set_defaults(func=cmd_download)

    s = sub.add_parser("corpus", help="load a corpus: clips per emotion, speaker and gender; write its manifest",
                       description="Supported corpora: " + "; ".join(f"{k} ({v})" for k, v in DESCRIPTIONS.items()))
    s.add_argument("path", metavar="PATH", help="corpus folder, its zip, or a CSV/JSONL manifest")
    corpus_arg(s)
    s.add_argument("--manifest", metavar="FILE", help="write the records to FILE (.jsonl or .csv)")
    s.add_argument("--json", action="store_true", help="print the counts as JSON")
    s.set_defaults(func=cmd_corpus)

    s = sub.add_parser("analyze", help="audio analysis: lengths, levels, trim sweep, example spectrograms")
    data_arg(s, positional=True)
    s.add_argument("--out", required=True, help="output folder")
    s.set_defaults(func=cmd_analyze)


def _add_train_parser(sub: Any) -> None:
    from voxemo.corpus import CORPORA

    s = sub.add_parser("train", help="compare both CNN variants on held-out speakers, retrain the better on all data",
                       description="Several DATA train one model on the union of their classes; speakers stay "
                                   "apart per corpus, validation speakers come from every corpus, and each corpus "
                                   "is sampled equally per epoch.")
    s.add_argument("data", nargs="*", metavar="DATA", help="corpus folders, zips or CSV manifests (see voxemo corpus "
                   "--help); none: RAVDESS from $VOXEMO_DATA, else a downloaded copy, else download it")
    s.add_argument("--corpus", action="append", choices=[*CORPORA, "auto"],
                   help="naming convention: once for every DATA, or once per DATA in order (auto = detected)")
    s.add_argument("--jobs", type=count, default=0, help="processes for feature extraction (0 = all cores)")
    s.add_argument("--out", required=True, help="model folder to write")
    s.add_argument("--model", choices=["cnn", "whisper", "voice"], default="cnn",
                   help="the family: cnn (default: the CNN recipe), or a linear head on a shipped frozen encoder's "
                        "features, whisper (Whisper base: several corpora and languages are its normal diet) or "
                        "voice (a speaker encoder); those take minutes and no torch")
    s.add_argument("--channel", choices=["wideband", "telephone"], default="wideband",
                   help="telephone: also train on copies through a simulated telephone line (every clip for an "
                        "encoder family, a third of the augmented copies for the CNN), as the shipped *-telephone "
                        "models were")
    s.add_argument("--leave-out", metavar="EMOTION[,...]",
                   help="leave out the clips of these emotions (e.g. boredom: a class only one corpus has, which "
                        "the others never teach against)")
    s.add_argument("--like", metavar="MODEL",
                   help="repeat a trained CNN's recipe (a folder or a shipped name, e.g. fast) with this run's changes "
                        "(--channel, --set): its config, epoch count and output-bias variant, its temperature "
                        "copied; nothing chosen again")
    s.add_argument("--onnx-only", action="store_true",
                   help="store the network once, as model.onnx (it carries the whole torch state; how the shipped "
                        "folders are stored), with no weights.pt")
    s.add_argument("--calibration-from", metavar="EVAL_DIR",
                   help="take the softmax temperature from a `voxemo evaluate` folder of the same recipe (fitted on "
                        "its out-of-fold predictions: every speaker unseen) instead of the validation speakers")
    training_args(s)
    s.set_defaults(func=cmd_train)


def _add_evaluate_parser(sub: Any) -> None:
    from voxemo.experiment.splits import PROTOCOLS

    s = sub.add_parser("evaluate", help="cross-validate under a protocol, or train on some corpora and test on "
                                        "another, and write metrics and a report")
    data_arg(s, positional=True)
    s.add_argument("--protocol", choices=PROTOCOLS, default="actor-6fold")
    s.add_argument("--model", choices=["cnn", "whisper", "voice", "egemaps-svm"], default="cnn",
                   help="cnn (default), whisper or voice (a linear head on that shipped frozen encoder), or the "
                        "classic baseline: openSMILE eGeMAPS functionals + RBF SVM")
    s.add_argument("--train", nargs="+", metavar="DATA", help="cross-corpus: train one model on these corpora ...")
    s.add_argument("--test", nargs="+", metavar="DATA", help="... and score it on these, over the classes both share "
                                                             "(calm folded into neutral)")
    s.add_argument("--trained", metavar="MODEL",
                   help="score this trained model (a folder, or a shipped model's name: default, whisper-telephone, "
                        "fast, telephone, voice, voice-telephone) on --test DATA instead of training one")
    s.add_argument("--adapt", action="store_true", help="also adapt each model without labels to its test clips' audio "
                                                        "(voxemo adapt) and score it again")
    s.add_argument("--shots", type=shots, metavar="K,K,...",
                   help="cross-corpus: few-shot learning curve, fine-tuning on K labelled test clips per class from "
                        "half of the test speakers and scoring the other half (e.g. 0,2,5,10,20)")
    s.add_argument("--draws", type=positive_int, default=5, help="speaker splits per K for --shots (default 5)")
    s.add_argument("--test-channel", choices=["wideband", "telephone"], default="wideband",
                   help="pass the test audio through a simulated channel first: telephone = 8 kHz, 300-3400 Hz, "
                        "mu-law (training audio stays as recorded)")
    engine_args(s)
    s.add_argument("--out", required=True, help="output folder")
    training_args(s)
    s.set_defaults(func=cmd_evaluate)


def _add_predict_parser(sub: Any) -> None:
    from voxemo.apps.adapt_cli import ADAPT_HELP, adapt_by_arg, prior_args

    s = sub.add_parser("predict", help="predict the emotion of audio files, folders or manifests")
    s.add_argument("paths", nargs="+", metavar="PATH",
                   help="audio files, folders (walked recursively) or manifests (.jsonl/.csv with a path column)")
    s.add_argument("--model", help="model folder or .onnx file (default: the pretrained model shipped with voxemo)")
    s.add_argument("--backend", choices=["auto", "torch", "onnx"], default="auto",
                   help=BACKEND_HELP)
    fmt = s.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="one JSON object per input line")
    fmt.add_argument("--csv", action="store_true", help="CSV: path, emotion, confidence, one column per class, error")
    s.add_argument("--output", metavar="FILE", help="write results to FILE (JSON lines, or CSV if it ends in .csv "
                                                   "or with --csv, or a Parquet folder if it ends in .parquet) "
                                                   "instead of stdout")
    s.add_argument("--resume", action="store_true",
                   help="append to --output FILE, skipping inputs already in it (recorded errors are not retried)")
    s.add_argument("--jobs", type=count, default=0,
                   help="worker processes, one thread each (0 = all cores; with --engine ray: actors, 0 = one per "
                        "free CPU of the cluster)")
    engine_args(s)
    s.add_argument("--min-confidence", type=probability, default=0.0, metavar="P",
                   help="report speech whose top probability is below P (0..1) as uncertain, with no emotion "
                        "(default 0: always an emotion); inputs without speech are always reported as no speech")
    s.add_argument("--adapt", action="store_true", help=ADAPT_HELP)
    prior_args(s)
    adapt_by_arg(s)
    s.set_defaults(func=cmd_predict)


def _add_export_parser(sub: Any) -> None:
    s = sub.add_parser("export", help="export a CNN model to ONNX (network, config and labels in one file)")
    s.add_argument("--onnx", required=True, metavar="FILE", help="the .onnx file to write")
    s.add_argument("--model", help="CNN model folder or shipped name (fast, telephone); the default model is already "
                                   "ONNX")
    s.set_defaults(func=cmd_export)


def main(argv: Sequence[str] | None = None) -> int:
    pin_cpu_kernels()  # before numpy is imported: the same numbers on any x86-64 CPU
    for name in ("stdout", "stderr"):  # started with it closed (`voxemo ... >&-`): what goes there is lost, no crash
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w"))  # noqa: SIM115
            print(f"voxemo: warning: standard {name[3:]}put is closed", file=sys.stderr)
    args = build_parser().parse_args(argv)
    args.progress = not args.quiet and sys.stderr.isatty()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s: %(message)s")
    try:
        return int(args.func(args))
    except VoxemoError as exc:
        print(f"voxemo: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:  # an optional part that is not installed: name the extra that brings it
        message = missing_extra_message(exc.name or "", f"voxemo {args.command}")
        if message is None:
            raise
        print(f"voxemo: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("voxemo: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (e.g. `voxemo predict DIR | head`): stop quietly, as Unix tools do; point stdout at
        # devnull so that the interpreter's final flush does not raise again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:  # what the command writes: a full disk, a missing folder, --out naming a file
        print(f"voxemo: error: {exc.filename or 'output'}: {exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
