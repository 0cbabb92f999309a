"""The whisper family on the development protocol: leave one development corpus out (train RAVDESS + Emo-DB, test
TurEV-DB; train RAVDESS + TurEV-DB, test Emo-DB), plain, adapted without labels and few-shot, plus RAVDESS alone and
RAVDESS actor-6fold. Prints a markdown table::

    python experiments/whisper_probe.py [--extra ../extra/emotiontts] [--norm corpus] [--c 0.05] [--shots 0,10]
        [--leave-out boredom] [--unbalanced] [--test-channel telephone] [--phone-copies]
        [--rows loco,ravdess,actor6] [--encoder FILE SHA256] [--spread 3]

UAR over angry/happy/neutral/sad (calm folded into neutral), as ``voxemo evaluate --train --test`` scores it;
"adapted" is the head's standardisation moved to the test corpus' windows (``voxemo adapt`` with every clip, prior
0), "per speaker" to each test speaker's own. The head's fit is convex and deterministic: there are no seeds to vary,
so ``--spread K`` instead refits on K draws of 20 of RAVDESS' 24 actors (and every other training corpus) and
reports the mean ± standard deviation. ``--extra`` adds corpora to every training set (never a test set).
``--test-channel telephone`` passes every test clip through a simulated telephone line; ``--phone-copies`` trains on
a telephone copy of every training clip too (``--set augment.telephone=1`` in the CLI).
Features are cached (``$VOXEMO_CACHE``): the first run encodes every clip (about a minute per corpus here).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from voxemo.corpus.sources import load_source
from voxemo.experiment.probe import (
    EncoderFile,
    cross_corpus_probe,
    encoder_features,
    evaluate_probe,
    telephone_copies,
    whisper_config,
)
from voxemo.nn.probe import HEAD_C, HEAD_NORM

DATA = Path(os.environ.get("VOXEMO_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--extra", nargs="*", default=[], help="more training corpora (folders voxemo detects)")
    ap.add_argument("--norm", default=HEAD_NORM)
    ap.add_argument("--c", type=float, default=HEAD_C)
    ap.add_argument("--shots", default="0,10")
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--rows", default="loco,ravdess,actor6")
    ap.add_argument("--spread", type=int, default=0, help="draws of 20 of RAVDESS' 24 actors (0: all actors)")
    ap.add_argument("--encoder", nargs=2, metavar=("FILE", "SHA256"), help="another encoder build")
    ap.add_argument("--leave-out", default="", help="emotions left out of every training set (as voxemo train "
                                                    "--leave-out), e.g. boredom")
    ap.add_argument("--unbalanced", action="store_true", help="actor6 rows on an emotion-unbalanced RAVDESS: per "
                    "actor, two emotions drawn at random keep all their clips, the others one in four")
    ap.add_argument("--test-channel", default="wideband", choices=["wideband", "telephone"])
    ap.add_argument("--phone-copies", action="store_true", help="train on a telephone copy of every clip too")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    cfg = whisper_config()
    if args.phone_copies:
        cfg = cfg.replace(augment=cfg.augment.replace(telephone=1.0))
    enc = EncoderFile(*args.encoder) if args.encoder else None
    shots = [int(k) for k in args.shots.split(",") if k]
    names = ["ravdess", "emodb", "turevdb"]
    feats, train_feats = {}, {}
    drop = {e for e in args.leave_out.split(",") if e}
    for name in names + list(args.extra):
        recs = load_source(str(DATA / name) if name in names else name, None, progress=False)
        kept, f, errors = encoder_features(recs, cfg, enc, jobs=args.jobs, threads=2, progress=False)
        keep = [i for i, r in enumerate(kept) if r.emotion not in drop]
        train_feats[name] = ([kept[i] for i in keep], [f[i] for i in keep],
                             telephone_copies([kept[i] for i in keep], cfg, enc, jobs=args.jobs, threads=2,
                                              progress=False))
        if args.test_channel != "wideband":
            kept, f, errors = encoder_features(recs, cfg, enc, jobs=args.jobs, threads=2, progress=False,
                                               channel=args.test_channel)
        feats[name] = (kept, f)
        print(f"{name}: {len(kept)} clips, {len(errors)} failed", file=sys.stderr)
    extra = list(args.extra)
    rows = args.rows.split(",")
    print(f"norm={args.norm} C={args.c} extra={extra or '-'} left out={args.leave_out or '-'} "
          f"encoder={enc.path if enc else 'shipped'} test channel={args.test_channel} "
          f"telephone copies={args.phone_copies}\n")
    print("| train | test | plain | adapted | per speaker | " + " | ".join(f"{k} shots" for k in shots if k) + " |")
    print("|---|---|---:|---:|---:|" + "---:|" * len([k for k in shots if k]))
    tests = []
    if "loco" in rows:
        tests += [(["ravdess", "emodb"], "turevdb"), (["ravdess", "turevdb"], "emodb")]
    if "ravdess" in rows:
        tests += [(["ravdess"], "turevdb"), (["ravdess"], "emodb")]
    for train, test in tests:
        runs = []
        draws = args.spread or 1
        for d in range(draws):
            keep_actor = set(range(1, 25))
            if args.spread:
                keep_actor = set(np.random.default_rng(d).choice(np.arange(1, 25), 20, replace=False).tolist())
            recs, fs, copies = [], [], []
            for name in train + extra:
                names_recs, names_feats, names_copies = train_feats[name]
                for i, (r, f) in enumerate(zip(names_recs, names_feats)):
                    if name != "ravdess" or int(r.speaker) in keep_actor:
                        recs.append(r)
                        fs.append(f)
                        copies.append(names_copies[i] if names_copies else [])
            out = []
            for adapt in ("corpus", "speaker"):
                res = cross_corpus_probe(recs, fs, *feats[test], config=cfg, adapt=adapt,
                                         shots=shots if adapt == "corpus" else (), draws=args.draws,
                                         norm=args.norm, c=args.c, train_copies=copies)
                if adapt == "corpus":
                    out += [res.scores.four_class.uar, res.adapted.four_class.uar]
                    curve = [float(np.mean(s.uar4)) for s in res.shots if s.k]
                else:
                    out.append(res.adapted.four_class.uar)
            runs.append(out + curve)
        a = np.array(runs)
        cells = [f"{m:.3f}" + (f" ± {s:.3f}" if args.spread else "") for m, s in zip(a.mean(0), a.std(0))]
        print(f"| {' + '.join(train + extra)} | {test} | " + " | ".join(cells) + " |", flush=True)
    if "actor6" in rows:
        recs = load_source(str(DATA / "ravdess"), None, progress=False)
        if args.unbalanced:
            recs = unbalanced(recs)
            print(f"\nunbalanced RAVDESS: {len(recs)} clips, per actor two emotions whole, a quarter of the others")
        for adapt in ("", "speaker"):
            ev = evaluate_probe(recs, cfg, "actor-6fold", adapt=adapt, encoder=enc, jobs=args.jobs, progress=False,
                                channel=args.test_channel)
            s = ev.summary
            print(f"\nRAVDESS actor-6fold{' (each test actor adapted)' if adapt else ''}: accuracy "
                  f"{s.accuracy.mean:.3f} ± {s.accuracy.std:.3f}, UAR {s.uar.mean:.3f} ± {s.uar.std:.3f}", flush=True)


def unbalanced(recs: list) -> list:  # type: ignore[type-arg]
    """Per actor, two emotions (drawn with the actor's number as seed) keep every clip, the others every fourth."""
    emotions = sorted({r.emotion for r in recs})
    keep = []
    for actor in sorted({r.speaker for r in recs}):
        mine = sorted((r for r in recs if r.speaker == actor), key=lambda r: r.path)
        whole = set(np.random.default_rng(int(actor)).choice(emotions, 2, replace=False).tolist())
        for e in emotions:
            of_e = [r for r in mine if r.emotion == e]
            keep += of_e if e in whole else of_e[::4]
    return keep


if __name__ == "__main__":
    main()
