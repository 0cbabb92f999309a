"""How much the voice model's cross-corpus scores move with its training speakers: its head (the encoder is fixed,
and the fit is deterministic, so there are no seeds to vary) fitted on several random draws of 20 of RAVDESS' 24
actors, each scored on Emo-DB and TurEV-DB as fitted and adapted without labels to each corpus' audio (the prior of
``voxemo adapt``), and on a telephone version of them with ``--channel telephone``. Prints a markdown table::

    pip install --no-deps resemblyzer==0.1.4
    python experiments/voice_spread.py [--draws 3] [--actors 20] [--channel wideband|telephone] [--phone-copies]

``--phone-copies`` also fits each head on a telephone copy of every training clip (the line of
:func:`voxemo.dsp.channel.telephone`), the voice model's version of the telephone model's augmentation.

UAR over angry/happy/neutral/sad (calm folded into neutral), as ``voxemo evaluate --train --test`` scores it.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
from pathlib import Path

import numpy as np

from voxemo.corpus.sources import load_source
from voxemo.experiment.crossscore import score_cross_corpus
from voxemo.experiment.dataset import load_features
from voxemo.experiment.multicorpus import model_labels
from voxemo.inference.adaptset import PRIOR_SECONDS, adaptation_set
from voxemo.nn.train import predict_specs
from voxemo.nn.voice import (
    VoiceNet,
    adapt_voice,
    clip_windows,
    fit_head_on,
    load_encoder,
    voice_config,
    window_features,
)


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
    config = voice_config()
    train = load_source(args.ravdess, "ravdess", progress=False)
    train, specs, _ = load_features(train, config, progress=False)
    labels = list(model_labels(train))
    y = np.array([labels.index(r.emotion) for r in train])
    base = VoiceNet(config.features.n_mels, len(labels))
    load_encoder(base)
    segments, clip = clip_windows(specs, config)
    raw = window_features(base, segments)
    if args.phone_copies:  # the same clips through the phone line: more windows, the same clip ids and labels
        kept, phone = load_features(train, config, progress=False, channel="telephone")[:2]
        assert [r.path for r in kept] == [r.path for r in train]
        phone_segments, phone_clip = clip_windows(phone, config)
        raw = np.concatenate([raw, window_features(base, phone_segments)])
        clip = np.concatenate([clip, phone_clip])
    tests = {}
    for corpus in ("emodb", "turevdb"):
        recs = load_source(getattr(args, corpus), corpus, progress=False)
        tests[corpus] = load_features(recs, config, progress=False, channel=args.channel)[:2]
    actors = sorted({r.speaker for r in train})
    speaker = np.array([r.speaker for r in train])
    rows = []
    for draw in range(args.draws):
        chosen = np.random.default_rng([draw, 20]).choice(actors, args.actors, replace=False)
        keep = np.isin(speaker[clip], chosen)
        net = copy.deepcopy(base)
        fit_head_on(net, raw[keep], y[clip[keep]])
        row = {}
        for corpus, (recs, test_specs) in tests.items():
            for tag in ("none", "adapted"):
                model = net
                if tag == "adapted":
                    model = copy.deepcopy(net)
                    weight = adaptation_set([], test_specs, config, min_seconds=0).weight(PRIOR_SECONDS)
                    adapt_voice(model, test_specs, config, weight)
                probs = predict_specs(model, test_specs, config)  # type: ignore[arg-type]  # same surface
                four = score_cross_corpus(recs, probs, labels, labels).four_class
                assert four is not None
                row[f"{corpus} {tag}"] = four.uar
        rows.append(row)
        print(f"draw {draw}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()), file=sys.stderr, flush=True)
    copies = ", with phone copies" if args.phone_copies else ""
    print(f"| {args.channel}, {args.draws} draws of {args.actors} actors{copies} | Emo-DB | TurEV-DB | mean |")
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
