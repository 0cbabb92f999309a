"""The shipped model on the cross-corpus development sets (Emo-DB, TurEV-DB; never trained on): as it is, adapted
without labels to each corpus' audio (with several amounts of audio and priors), and fine-tuned on K labelled clips
per class from half of the speakers (scored on the other half). Per-member scores give the seed spread (each member
is one CNN trained with its own seed). Prints markdown tables and writes ``--out`` (JSON).

Usage::

    python experiments/adapt_shipped.py [--emodb DIR] [--turevdb DIR] [--model DIR] [--shots 0,2,5,10,20]
        [--draws 5] [--out runs/adapt_shipped.json] [--channel telephone]

UAR over angry/happy/neutral/sad (calm folded into neutral), as ``voxemo evaluate --train --test`` scores it.
About 15 minutes on 2 idle cores, most of it fine-tuning.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from voxemo.corpus.sources import load_source
from voxemo.experiment.crosscorpus import score_cross_corpus
from voxemo.experiment.dataset import load_features
from voxemo.experiment.fewshot import few_shot_curve
from voxemo.inference.adaptset import adaptation_set
from voxemo.inference.loading import load_model
from voxemo.inference.torch_backend import EmotionClassifier
from voxemo.nn.adapt import adapt_norm_stats
from voxemo.nn.model import EmotionEnsemble
from voxemo.nn.train import predict_specs

#: (clips of the corpus used for adaptation or None for all, prior seconds)
AMOUNTS = [(10, 300.0), (30, 300.0), (100, 300.0), (None, 0.0), (None, 300.0), (None, 1000.0)]


def uar4(clf: EmotionClassifier, model: Any, records: list, specs: list) -> float:
    probs = predict_specs(model, specs, clf.config)
    labels = [str(c) for c in clf.classes_]
    return float(score_cross_corpus(records, probs, labels, labels).four_class.uar)  # type: ignore[union-attr]


def adapted(clf: EmotionClassifier, model: Any, stats: list | None, specs: list, prior: float) -> Any:
    aset = adaptation_set([], specs, clf.config, min_seconds=0)
    out = copy.deepcopy(model)
    adapt_norm_stats(out, specs, stats, aset.weight(prior))
    return out


def main(argv: list[str] | None = None) -> int:
    shared = Path(os.environ.get("VOXEMO_DATA", "../shared/data/ravdess")).parent
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--emodb", default=str(shared / "emodb"))
    p.add_argument("--turevdb", default=str(shared / "turevdb"))
    p.add_argument("--model", help="a CNN model folder (default: the shipped fast model)")
    p.add_argument("--shots", default="0,2,5,10,20")
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--out", default="runs/adapt_shipped.json")
    p.add_argument("--channel", default="wideband", choices=["wideband", "telephone"],
                   help="pass the test corpora through a simulated telephone line first")
    args = p.parse_args(argv)
    clf = load_model(args.model or "fast", backend="torch")
    assert isinstance(clf, EmotionClassifier)
    members = list(clf.model.members) if isinstance(clf.model, EmotionEnsemble) else [clf.model]
    sources = clf.source_stats or [None] * len(members)
    labels = [str(c) for c in clf.classes_]
    result: dict[str, Any] = {"unsupervised": {}, "shots": {}}
    for corpus in ("emodb", "turevdb"):
        records = load_source(getattr(args, corpus), corpus, progress=False)
        records, specs, _ = load_features(records, clf.config, progress=False, channel=args.channel)
        rows = {"none": {"ensemble": uar4(clf, clf.model, records, specs),
                         "members": [uar4(clf, EmotionEnsemble([m]), records, specs) for m in members]}}
        for n, prior in AMOUNTS:
            per_draw = []
            for draw in range(3 if n else 1):
                rng = np.random.default_rng([draw, 11])
                sub = [specs[i] for i in rng.choice(len(specs), n, replace=False)] if n else specs
                per_draw.append((uar4(clf, adapted(clf, clf.model, clf.source_stats, sub, prior), records, specs),
                                 [uar4(clf, adapted(clf, EmotionEnsemble([m]), [s], sub, prior), records, specs)
                                  for m, s in zip(members, sources)]))
            rows[f"{n or 'all'} clips, prior {prior:g} s"] = {
                "ensemble": float(np.mean([e for e, _ in per_draw])),
                "members": [float(np.mean([m[i] for _, m in per_draw])) for i in range(len(members))]}
        result["unsupervised"][corpus] = rows
        ks = [int(k) for k in args.shots.split(",")]
        base = adapted(clf, clf.model, clf.source_stats, specs, 300.0)
        for start, model in (("as shipped", clf.model), ("adapted", base)):
            start_clf = EmotionClassifier(model, clf.config, labels)
            curve = few_shot_curve(start_clf, labels, records, specs, ks, draws=args.draws)
            result["shots"].setdefault(corpus, {})[start] = [c.to_dict() for c in curve]
        print(corpus, json.dumps(rows), file=sys.stderr, flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(render(result))
    return 0


def render(result: dict[str, Any]) -> str:
    lines = ["| adaptation | Emo-DB | TurEV-DB | mean | members (seed spread), mean of both |",
             "|---|---:|---:|---:|---|"]
    un = result["unsupervised"]
    for row in un["emodb"]:
        e, t = un["emodb"][row], un["turevdb"][row]
        members = [(a + b) / 2 for a, b in zip(e["members"], t["members"])]
        lines.append(f"| {row} | {e['ensemble']:.3f} | {t['ensemble']:.3f} | {(e['ensemble'] + t['ensemble']) / 2:.3f}"
                     f" | {np.mean(members):.3f} ± {np.std(members):.3f} |")
    lines += ["", "| labelled clips per class | start | Emo-DB | TurEV-DB | mean |", "|---:|---|---:|---:|---:|"]
    shots = result["shots"]
    for start in shots["emodb"]:
        for e, t in zip(shots["emodb"][start], shots["turevdb"][start]):
            em, tm = e["uar4"]["mean"], t["uar4"]["mean"]
            lines.append(f"| {e['k']} | {start} | {em:.3f} ± {e['uar4']['std']:.3f} | {tm:.3f} ± {t['uar4']['std']:.3f}"
                         f" | {(em + tm) / 2:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
