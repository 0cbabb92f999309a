"""How much the voice model's cross-corpus scores move with its training speakers: its head (the encoder is fixed,
and the fit is deterministic, so there are no seeds to vary) fitted on several random draws of 20 of RAVDESS' 24
actors, each scored on Emo-DB and TurEV-DB as fitted and adapted without labels to each corpus' audio (as
``voxemo evaluate --train --test --adapt`` adapts), and on a telephone version of them with ``--channel telephone``.
Prints a markdown table::

    python experiments/voice_spread.py [--draws 3] [--actors 20] [--channel wideband|telephone] [--phone-copies]

``--phone-copies`` also fits each head on a telephone copy of every training clip (``augment.telephone=1``, as
``voxemo train --model voice --channel telephone`` trains the ``voice-telephone`` model).

UAR over angry/happy/neutral/sad (calm folded into neutral), as ``voxemo evaluate --train --test`` scores it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from voxemo.corpus.sources import load_source
from voxemo.experiment.probe import cross_corpus_probe, encoder_features, telephone_copies
from voxemo.nn.probe import FAMILIES


def main(argv: list[str] | None = None) -> int:
    shared = Path(os.environ.get("VOXEMO_DATA", "../shared/data/ravdess")).parent
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ravdess", default=str(shared / "ravdess"))
    p.add_argument("--emodb", default=str(shared / "emodb"))
    p.add_argument("--turevdb", default=str(shared / "turevdb"))
    p.add_argument("--draws", type=int, default=3)
    p.add_argument("--actors", type=int, default=20)
    p.add_argument("--channel", default="wideband", choices=["wideband", "telephone"])
    p.add_argument("--phone-copies", action="store_true", help="train on a telephone copy of every clip as well")
    args = p.parse_args(argv)
    config = FAMILIES["voice"].config()
    if args.phone_copies:
        config = config.replace(augment=config.augment.replace(telephone=1.0))
    train, feats, _ = encoder_features(load_source(args.ravdess, "ravdess", progress=False), config, progress=False)
    copies = telephone_copies(train, config, progress=False)
    tests = {corpus: encoder_features(load_source(getattr(args, corpus), corpus, progress=False), config,
                                      progress=False, channel=args.channel)[:2] for corpus in ("emodb", "turevdb")}
    actors = sorted({r.speaker for r in train})
    rows = []
    for draw in range(args.draws):
        chosen = set(np.random.default_rng([draw, 20]).choice(actors, args.actors, replace=False).tolist())
        keep = [i for i, r in enumerate(train) if r.speaker in chosen]
        row = {}
        for corpus, (recs, test_feats) in tests.items():
            result = cross_corpus_probe([train[i] for i in keep], [feats[i] for i in keep], recs, test_feats,
                                        config=config, adapt="corpus",
                                        train_copies=[copies[i] for i in keep] if copies else None)
            assert result.scores.four_class is not None and result.adapted and result.adapted.four_class
            row[f"{corpus} none"] = result.scores.four_class.uar
            row[f"{corpus} adapted"] = result.adapted.four_class.uar
        rows.append(row)
        print(f"draw {draw}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()), file=sys.stderr, flush=True)
    with_copies = ", with phone copies" if args.phone_copies else ""
    print(f"| {args.channel}, {args.draws} draws of {args.actors} actors{with_copies} | Emo-DB | TurEV-DB | mean |")
    print("|---|---:|---:|---:|")
    for tag in ("none", "adapted"):
        e = np.array([r[f"emodb {tag}"] for r in rows])
        t = np.array([r[f"turevdb {tag}"] for r in rows])
        m = (e + t) / 2
        print(f"| {tag} | {e.mean():.3f} ± {e.std():.3f} | {t.mean():.3f} ± {t.std():.3f} | "
              f"{m.mean():.3f} ± {m.std():.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
