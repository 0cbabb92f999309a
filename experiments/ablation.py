"""Ablation of the default recipe on RAVDESS ``actor-6fold``: the full recipe, then each augmentation family (and
the block order) switched off in turn. Prints a markdown table and keeps every row's summary in ``--out``, so an
interrupted run resumes where it stopped (rows already in the file are not run again).

Usage::

    python experiments/ablation.py [--data DIR] [--out runs/ablation.json] [--rows full,no-pitch,...] [--seed 0]

Each row is one speaker-independent 6-fold evaluation (about 6-7 minutes on 2 idle cores with the default recipe;
``ensemble-of-3`` trains three CNNs per fold, about 20 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from voxemo.core.config import Config, apply_overrides
from voxemo.corpus import load_ravdess
from voxemo.experiment.dataset import load_augmented, load_features
from voxemo.experiment.evaluate import evaluate

#: Row name -> config overrides on top of the defaults.
ROWS: dict[str, list[str]] = {
    "full": [],
    "no-waveform-augmentation": ["augment.copies=0"],
    "no-pitch-shift": ["augment.pitch_semitones=0"],
    "no-time-stretch": ["augment.stretch=0"],
    "no-noise": ["augment.noise_snr_db=null"],
    "no-gain": ["augment.gain_db=0"],
    "no-specaugment": ["train.freq_masks=0", "train.time_masks=0", "train.freq_shift=0"],
    "conv-bn-relu-pool-blocks": ["model.pool_first=false"],
    "no-label-smoothing": ["train.label_smoothing=0"],
    "ensemble-of-3": ["model.members=3"],
    "flatten-frequency": ["model.freq_pooling=flatten"],
    "crnn-gru-64": ["model.recurrent=64"],
    "mel-128": ["features.n_mels=128"],
    "epochs-80": ["train.epochs=80"],
    "weight-ema": ["train.ema=0.995"],
    "equaliser-6db": ["augment.eq_db=6"],
    "ensemble-mixed-3": ["model.members=3", 'model.member_options=[{}, {"freq_pooling": "flatten"}, {}]'],
    "residual": ["model.residual=true"],
    "fft-2048": ["features.n_fft=2048"],
    "hop-256": ["features.hop_length=256", "train.time_mask_width=32"],
    "lr-0.001": ["train.lr=0.001"],
    "lr-0.006": ["train.lr=0.006"],
    "segments-2s": ["audio.duration=2.0"],
    "speaker-adversary-0.5": ["train.speaker_adversary=0.5"],
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=os.environ.get("VOXEMO_DATA", "../shared/data/ravdess"))
    p.add_argument("--out", default="runs/ablation.json")
    p.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, from: {', '.join(ROWS)}")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        p.error(f"unknown rows {unknown}")
    out = Path(args.out)
    done = json.loads(out.read_text()) if out.exists() else {}
    records = load_ravdess(args.data)
    for name in rows:
        if name in done:
            continue
        cfg = apply_overrides(Config(), [f"train.seed={args.seed}", *ROWS[name]])
        start = time.perf_counter()
        kept, specs, _ = load_features(records, cfg, progress=False)
        aug = load_augmented(kept, cfg, progress=False)
        result = evaluate(kept, specs, cfg, "actor-6fold", aug_specs=aug, progress=False)
        done[name] = {"overrides": ROWS[name], "summary": result.summary.to_dict(),
                      "folds": [f.accuracy for f in result.folds], "seconds": time.perf_counter() - start}
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(done, indent=2))
        os.replace(tmp, out)
        print(f"{name}: accuracy {result.summary.accuracy.mean:.3f}", file=sys.stderr, flush=True)
    print("| recipe | overrides | accuracy (mean ± std over 6 actor folds) | UAR | minutes |")
    print("|---|---|---|---|---|")
    for name in rows:
        row = done[name]
        acc, uar = row["summary"]["accuracy"], row["summary"]["uar"]
        print(f"| {name} | {' '.join(row['overrides']) or '(defaults)'} | {acc['mean']:.3f} ± {acc['std']:.3f} | "
              f"{uar['mean']:.3f} | {row['seconds'] / 60:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
