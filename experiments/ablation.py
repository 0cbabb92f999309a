"""Ablation of the default recipe on RAVDESS ``actor-6fold``: the full recipe, then each augmentation family (and
the block order) switched off in turn. Prints a markdown table and keeps every row's summary in ``--out``, so an
interrupted run resumes where it stopped (rows already in the file are not run again).

Usage::

    python experiments/ablation.py [--data DIR] [--out runs/ablation.json] [--rows full,no-pitch,...] [--seed 0]

Each row is one speaker-independent 6-fold evaluation (about 6-7 minutes on 2 idle cores with the default recipe;
``ensemble-of-3`` trains three CNNs per fold, about 20 minutes).

On a Ray cluster (``pip install 'voxemo[ray]'``)::

    python experiments/ablation.py --engine ray [--address HOST:6379] [--seeds 0,1,2] [--concurrent 4]

runs every row's folds as Ray tasks, ``--concurrent`` rows at a time, so a grid of rows x seeds keeps a cluster busy:
features are computed here, once per row (through the feature cache), and the metrics are a local run's for the same
seed. With ``--seeds`` each row is run once per seed and kept as ``ROW@seedN``.
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
    p.add_argument("--seeds", help="comma-separated seeds: every row once per seed (kept as ROW@seedN)")
    p.add_argument("--engine", choices=["local", "ray"], default="local", help="where the folds train")
    p.add_argument("--address", help="with --engine ray: the cluster (default $RAY_ADDRESS, else this machine)")
    p.add_argument("--concurrent", type=int, default=4, help="with --engine ray: rows evaluated at a time")
    args = p.parse_args(argv)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        p.error(f"unknown rows {unknown}")
    out = Path(args.out)
    done = json.loads(out.read_text()) if out.exists() else {}
    records = load_ravdess(args.data)
    seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else [args.seed]
    grid = [(f"{name}@seed{seed}" if args.seeds else name, name, seed) for name in rows for seed in seeds]
    runner = None
    if args.engine == "ray":
        from voxemo.experiment.distributed import ray_fold_runner

        runner = ray_fold_runner(args.address)

    def features(name: str, seed: int) -> tuple:
        cfg = apply_overrides(Config(), [f"train.seed={seed}", *ROWS[name]])
        kept, specs, _ = load_features(records, cfg, progress=False)
        return cfg, kept, specs, load_augmented(kept, cfg, progress=False)

    def fit(key: str, name: str, seed: int, start: float, cfg: Config, kept: list, specs: list,
            aug: list) -> tuple[str, dict]:
        result = evaluate(kept, specs, cfg, "actor-6fold", aug_specs=aug, progress=False, runner=runner)
        return key, {"overrides": ROWS[name], "seed": seed, "summary": result.summary.to_dict(),
                     "folds": [f.accuracy for f in result.folds], "seconds": time.perf_counter() - start}

    def keep(key: str, row: dict) -> None:
        done[key] = row
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(done, indent=2))
        os.replace(tmp, out)
        print(f"{key}: accuracy {row['summary']['accuracy']['mean']:.3f}", file=sys.stderr, flush=True)

    todo = [g for g in grid if g[0] not in done]
    if runner is None:
        for key, name, seed in todo:
            keep(*fit(key, name, seed, time.perf_counter(), *features(name, seed)))
    else:
        # rows side by side: features are computed here, one row after the other (cached), and each row's folds
        # wait on their Ray tasks in a thread while the cluster trains them; one Ray runtime for the whole grid
        from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

        from voxemo.core.cluster import ray_runtime

        with ray_runtime(args.address, purpose="experiments/ablation.py --engine ray"), \
                ThreadPoolExecutor(max(1, args.concurrent)) as pool:
            pending: set = set()
            for key, name, seed in todo:
                while len(pending) >= max(1, args.concurrent):
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for f in finished:
                        keep(*f.result())
                pending.add(pool.submit(fit, key, name, seed, time.perf_counter(), *features(name, seed)))
            for f in wait(pending).done:
                keep(*f.result())
    print("| recipe | overrides | accuracy (mean ± std over 6 actor folds) | UAR | minutes |")
    print("|---|---|---|---|---|")
    for name, _, _ in grid:
        row = done[name]
        acc, uar = row["summary"]["accuracy"], row["summary"]["uar"]
        print(f"| {name} | {' '.join(row['overrides']) or '(defaults)'} | {acc['mean']:.3f} ± {acc['std']:.3f} | "
              f"{uar['mean']:.3f} | {row['seconds'] / 60:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
