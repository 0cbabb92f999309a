"""Build the shipped ``voice`` model: the pretrained voice encoder (:mod:`voxemo.nn.voice`) with a linear head
fitted on all of RAVDESS, its softmax temperature fitted on the actor-6fold out-of-fold predictions, and report that
actor-6fold evaluation (each fold's head fitted on the other actors only)::

    pip install --no-deps resemblyzer==0.1.4   # the encoder's weights file; its code is never imported
    python experiments/train_voice.py --out src/voxemo/models/voice

About two minutes on one core: the encoder runs once over every window, then 7 logistic regressions.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time

import numpy as np

from voxemo.core.labels import fold_emotion
from voxemo.corpus.sources import load_source
from voxemo.dsp.scoring import average_windows
from voxemo.experiment.calibration import fit_temperature, window_logits
from voxemo.experiment.crossscore import FOUR_CLASSES, fold_probabilities, score_subset
from voxemo.experiment.dataset import load_features
from voxemo.experiment.metrics import scores
from voxemo.experiment.multicorpus import model_labels
from voxemo.experiment.splits import speaker_folds
from voxemo.inference.adaptset import PRIOR_SECONDS, adaptation_set
from voxemo.inference.torch_backend import EmotionClassifier
from voxemo.nn.voice import (
    HEAD_C,
    VoiceNet,
    adapt_voice,
    clip_windows,
    fit_head_on,
    load_encoder,
    voice_config,
    window_features,
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=os.environ.get("VOXEMO_DATA", "../shared/data/ravdess"))
    p.add_argument("--c", type=float, default=HEAD_C, help="inverse L2 strength of the head")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    start = time.perf_counter()
    config = voice_config()
    records = load_source(args.data, "ravdess", progress=False)
    records, specs, errors = load_features(records, config, progress=False)
    labels = list(model_labels(records))
    y = np.array([labels.index(r.emotion) for r in records])
    base = VoiceNet(config.features.n_mels, len(labels))
    load_encoder(base)
    segments, clip = clip_windows(specs, config)
    raw = window_features(base, segments)

    # actor-6fold: each fold's head fitted on the other actors' windows, its clips scored as prediction scores them
    # (and again with each fold's head adapted without labels to its test actors' audio)
    oof: list[np.ndarray] = [np.zeros(0)] * len(records)
    oof_adapted = np.zeros((len(records), len(labels)))
    for split in speaker_folds(records, val_speakers=0, seed=0):
        net = copy.deepcopy(base)
        train_w = np.isin(clip, split.train)
        fit_head_on(net, raw[train_w], y[clip[train_w]], c=args.c)
        clf = EmotionClassifier(net, config, labels)
        for i in split.test:
            oof[i] = clf.segment_proba(segments[clip == i])
        test = [specs[i] for i in split.test]
        adapt_voice(net, test, config, adaptation_set([], test, config, min_seconds=0).weight(PRIOR_SECONDS))
        oof_adapted[split.test] = average_windows(test, config, clf.segment_proba, len(labels))
    temperature = fit_temperature(window_logits(oof), y)
    evaluation: dict[str, float] = {"temperature": round(temperature, 4)}
    for name, probs in (("", np.stack([w.mean(axis=0) for w in oof])), ("adapted_", oof_adapted)):
        s = scores(y, probs.argmax(1), len(labels))
        folded, classes = fold_probabilities(probs, labels)
        s4 = score_subset([fold_emotion(r.emotion) for r in records], folded, classes, FOUR_CLASSES)
        evaluation |= {f"{name}accuracy": round(s["accuracy"], 4), f"{name}uar": round(s["uar"], 4),
                       f"{name}uar4": round(s4.uar, 4)}

    final = copy.deepcopy(base)
    fit_head_on(final, raw, y[clip], c=args.c)
    clf = EmotionClassifier(final, config, labels)
    clf.temperature = temperature
    clf.calibration = {"temperature": temperature, "method": "temperature scaling",
                       "fitted_on": "actor-6fold out-of-fold window logits (all folds together)"}
    clf.save(args.out, report={"recipe": "voice encoder (Resemblyzer, frozen) + logistic regression head",
                               "head_c": args.c, "n_clips": len(records), "n_windows": len(raw), "skipped": errors,
                               "evaluation": evaluation, "config": config.to_dict(),
                               "seconds": round(time.perf_counter() - start, 1)}, onnx=True)
    print(json.dumps(evaluation))
    print(f"wrote {args.out} ({len(records)} clips, {len(raw)} windows) in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
