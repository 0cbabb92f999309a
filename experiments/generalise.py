"""Which recipe is least bound to its corpus: train on all of RAVDESS, test on Emo-DB and TurEV-DB (never trained
on), over several seeds; each model scored as trained and after unsupervised adaptation to each test corpus' audio
(:meth:`voxemo.inference.classifier.Classifier.adapted`). Prints a markdown table and keeps every (row, seed) in
``--out``, so an interrupted run resumes where it stopped.

Usage::

    python experiments/generalise.py [--rows default,utterance-norm,...] [--seeds 0,1,2] [--out runs/generalise.json]
        [--ravdess DIR] [--emodb DIR] [--turevdb DIR] [--epochs 40] [--telephone] [--within]

UAR over angry/happy/neutral/sad (calm folded into neutral), the cross-corpus score of ``voxemo evaluate --train
--test``. One (row, seed) trains one CNN on 1,440 clips: a few minutes on one core.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from voxemo.core.config import Config, apply_overrides
from voxemo.corpus.sources import load_source
from voxemo.experiment.crosscorpus import score_cross_corpus
from voxemo.experiment.dataset import load_augmented, load_features
from voxemo.experiment.multicorpus import model_labels
from voxemo.inference.adaptset import adaptation_set
from voxemo.inference.torch_backend import EmotionClassifier
from voxemo.nn.adapt import measure_source
from voxemo.nn.train import predict_specs, train_model

#: Row name -> config overrides on top of the defaults.
ROWS: dict[str, list[str]] = {
    "default": [],
    "utterance-norm": ["features.utterance_norm=true"],
    "mixstyle": ["model.mixstyle=0.5"],
    "freq-instance-norm": ["model.freq_norm=0.5"],
    "telephone-augment": ["augment.telephone=0.3"],
}


def run_row(name: str, overrides: list[str], seed: int, epochs: int, data: dict[str, str],
            telephone: bool) -> dict[str, float]:
    config = apply_overrides(Config(), [*overrides, f"train.seed={seed}", f"train.epochs={epochs}"])
    train = load_source(data["ravdess"], "ravdess", progress=False)
    train, specs, _ = load_features(train, config, progress=False)
    aug = load_augmented(train, config, progress=False)
    labels = model_labels(train)
    y = np.array([labels.index(r.emotion) for r in train])
    start = time.perf_counter()
    model = train_model(specs, y, len(labels), config, aug_specs=aug, threads=1, progress=False).model
    clf = EmotionClassifier(model, config, labels)
    clf.source_stats = measure_source(model, specs)
    out: dict[str, float] = {"train_seconds": round(time.perf_counter() - start, 1)}
    for corpus in ("emodb", "turevdb"):
        for channel in ("wideband", "telephone") if telephone else ("wideband",):
            test = load_source(data[corpus], corpus, progress=False)
            test, test_specs, _ = load_features(test, config, progress=False, channel=channel)
            key = corpus if channel == "wideband" else f"{corpus}-telephone"
            probs = predict_specs(model, test_specs, config)
            out[key] = score_cross_corpus(test, probs, labels, labels).four_class.uar  # type: ignore[union-attr]
            aset = adaptation_set([r.path for r in test], test_specs, config)
            adapted = clf.adapted(aset)
            assert isinstance(adapted, EmotionClassifier)
            probs = predict_specs(adapted.model, test_specs, config)
            out[f"{key}+adapt"] = score_cross_corpus(test, probs, labels, labels).four_class.uar  # type: ignore[union-attr]
    return out


def within_row(name: str, overrides: list[str], seed: int, epochs: int, data: dict[str, str]) -> dict[str, float]:
    """RAVDESS actor-6fold: each fold's model scored on its test actors as recorded, through a telephone channel, and
    each after unsupervised adaptation to those test clips (UAR over the eight classes, pooled over folds)."""
    from voxemo.experiment.crosscorpus import adapt_to
    from voxemo.experiment.metrics import scores
    from voxemo.experiment.splits import make_splits

    config = apply_overrides(Config(), [*overrides, f"train.seed={seed}", f"train.epochs={epochs}"])
    records = load_source(data["ravdess"], "ravdess", progress=False)
    records, specs, _ = load_features(records, config, progress=False)
    _, phone, _ = load_features(records, config, progress=False, channel="telephone")
    aug = load_augmented(records, config, progress=False)
    labels = model_labels(records)
    y = np.array([labels.index(r.emotion) for r in records])
    pooled: dict[str, list[int]] = {"actor-6fold": [], "actor-6fold-telephone": [], "actor-6fold+adapt": [],
                                    "actor-6fold-telephone+adapt": []}
    truth: list[int] = []
    for split in make_splits(records, "actor-6fold", config):
        train_x = [specs[i] for i in split.train]
        model = train_model(train_x, y[split.train], len(labels), config,
                            aug_specs=[aug[i] for i in split.train] if aug else None, threads=1,
                            progress=False).model
        truth += y[split.test].tolist()
        for key, test in (("actor-6fold", specs), ("actor-6fold-telephone", phone)):
            test_x = [test[i] for i in split.test]
            pooled[key] += predict_specs(model, test_x, config).argmax(1).tolist()
            adapted = adapt_to(model, train_x, [], test_x, config).model
            pooled[f"{key}+adapt"] += predict_specs(adapted, test_x, config).argmax(1).tolist()
    return {k: scores(np.array(truth), np.array(v), len(labels))["uar"] for k, v in pooled.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, from: {', '.join(ROWS)}")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--out", default="runs/generalise.json")
    p.add_argument("--telephone", action="store_true", help="also score the test corpora through a telephone channel")
    p.add_argument("--within", action="store_true",
                   help="RAVDESS actor-6fold instead (wideband and telephone, each with and without adaptation)")
    shared = Path(os.environ.get("VOXEMO_DATA", "../shared/data/ravdess")).parent
    for corpus in ("ravdess", "emodb", "turevdb"):
        p.add_argument(f"--{corpus}", default=str(shared / corpus))
    args = p.parse_args(argv)
    out = Path(args.out)
    done = json.loads(out.read_text()) if out.is_file() else {}
    for name in args.rows.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            key = f"{name}/{seed}" + ("/within" if args.within else "")
            if key in done:
                continue
            print(f"{key} ...", file=sys.stderr, flush=True)
            done[key] = (within_row(name, ROWS[name], seed, args.epochs, vars(args)) if args.within else
                         run_row(name, ROWS[name], seed, args.epochs, vars(args), args.telephone))
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(done, indent=1))
            print(key, done[key], file=sys.stderr, flush=True)
    print(table(done))
    within = {k: v for k, v in done.items() if k.endswith("/within")}
    if within:
        print("\n| actor-6fold (UAR, 8 classes) | " + " | ".join(next(iter(within.values()))) + " |")
        for k, v in within.items():
            print(f"| {k} | " + " | ".join(f"{x:.3f}" for x in v.values()) + " |")
    return 0


def table(done: dict[str, dict[str, float]]) -> str:
    """Mean ± std over seeds per row and column, and the mean of the two corpora."""
    rows: dict[str, list[dict[str, float]]] = {}
    for key, res in done.items():
        if "emodb" in res:
            rows.setdefault(key.split("/")[0], []).append(res)
    cols = sorted({c for res in done.values() for c in res if c != "train_seconds"})
    lines = ["| row | seeds | " + " | ".join(cols) + " | mean Emo-DB, TurEV-DB | adapted |", "|---|---:|" +
             "---:|" * (len(cols) + 2)]
    for name, results in rows.items():
        cells = []
        for c in cols:
            v = [r[c] for r in results if c in r]
            cells.append(f"{np.mean(v):.3f} ± {np.std(v):.3f}" if v else "")
        both = [np.mean([r["emodb"], r["turevdb"]]) for r in results]
        adapted = [np.mean([r["emodb+adapt"], r["turevdb+adapt"]]) for r in results]
        lines.append(f"| {name} | {len(results)} | " + " | ".join(cells) +
                     f" | {np.mean(both):.3f} ± {np.std(both):.3f} | {np.mean(adapted):.3f} ± {np.std(adapted):.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
