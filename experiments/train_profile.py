"""Train a shipped model profile: the default model's recipe (ensemble of 3, output bias from the class priors, its
epoch count) on all of RAVDESS with extra config overrides, e.g. the telephone profile::

    python experiments/train_profile.py --set augment.telephone=0.3 --out src/voxemo/models/telephone

The variant choice and epoch count are the default model's (``training.json`` of ``--like``), not chosen again, and
the softmax temperature is copied from it (recorded as such in ``calibration.json``): the profile differs from the
default model only in the overrides. The model keeps its training speech's statistics for adaptation.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from voxemo.core.config import Config, apply_overrides
from voxemo.corpus.sources import load_source
from voxemo.experiment.dataset import load_augmented, load_features
from voxemo.experiment.multicorpus import model_labels
from voxemo.experiment.training import train_final
from voxemo.inference.loading import default_model_dir, load_model


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=os.environ.get("VOXEMO_DATA", "../shared/data/ravdess"))
    p.add_argument("--like", default=str(default_model_dir()), help="the model whose recipe is repeated")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    like = load_model(args.like, backend="torch")
    report = json.loads((Path(args.like) / "training.json").read_text())
    epochs = int(report["final_epochs"])
    config = apply_overrides(Config.from_dict(like.config.to_dict()), args.set)
    records = load_source(args.data, "ravdess", progress=False)
    records, specs, errors = load_features(records, config, progress=False)
    aug = load_augmented(records, config, progress=False)
    labels = model_labels(records)
    start = time.perf_counter()
    calibration = {"temperature": like.temperature,
                   "fitted_on": f"copied from {args.like} (same recipe but {', '.join(args.set) or 'nothing'}; "
                                "not refitted)"}
    clf = train_final(records, specs, config, epochs, labels=labels, aug_specs=aug, threads=1, progress=False,
                      calibration=calibration)
    clf.save(args.out, report={"like": args.like, "overrides": args.set, "final_epochs": epochs,
                               "n_clips": len(records), "skipped": errors, "config": config.to_dict(),
                               "seconds": round(time.perf_counter() - start, 1)}, onnx=True)
    print(f"trained {args.out} on {len(records)} clips for {epochs} epochs in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
