"""Build the shipped ``voice`` model: the pretrained voice encoder (:mod:`voxemo.nn.voice`) with a linear head
fitted on all of RAVDESS, its softmax temperature fitted on the actor-6fold out-of-fold predictions, and report that
actor-6fold evaluation (each fold's head fitted on the other actors only)::

    pip install --no-deps resemblyzer==0.1.4   # the encoder's weights file; its code is never imported
    python experiments/train_voice.py --out src/voxemo/models/voice
    python experiments/train_voice.py --phone-copies --out src/voxemo/models/voice-telephone

``--phone-copies`` fits the head on a telephone copy of every clip as well (the ``voice-telephone`` model). The
actor-6fold evaluation is reported on the clips as recorded and through the telephone line.

About five minutes on one core: the encoder runs once over every window, then 7 logistic regressions.
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
    p.add_argument("--phone-copies", action="store_true",
                   help="fit the head on a telephone copy of every clip as well (voxemo.dsp.channel.telephone)")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    start = time.perf_counter()
    config = voice_config()
    records = load_source(args.data, "ravdess", progress=False)
    records, specs, errors = load_features(records, config, progress=False)
    phone_records, phone_specs, _ = load_features(records, config, progress=False, channel="telephone")
    assert [r.path for r in phone_records] == [r.path for r in records]
    labels = list(model_labels(records))
    y = np.array([labels.index(r.emotion) for r in records])
    base = VoiceNet(config.features.n_mels, len(labels))
    load_encoder(base)
    channels = {}
    for name, clips in (("wideband", specs), ("telephone", phone_specs)):
        segments, clip = clip_windows(clips, config)
        channels[name] = (segments, clip, window_features(base, segments))
    train_on = ["wideband", "telephone"] if args.phone_copies else ["wideband"]

    def fitted(keep: np.ndarray) -> VoiceNet:
        """A copy of the encoder with a head fitted on the windows of the clips ``keep`` (bool per clip)."""
        net = copy.deepcopy(base)
        parts = [(raw[keep[clip]], y[clip[keep[clip]]]) for _, clip, raw in (channels[c] for c in train_on)]
        fit_head_on(net, np.concatenate([f for f, _ in parts]), np.concatenate([t for _, t in parts]), c=args.c)
        return net

    # actor-6fold: each fold's head fitted on the other actors' windows, its clips scored as prediction scores them,
    # wideband and through the phone line, each also with the fold's head adapted without labels to its test audio
    oof = {c: [np.zeros(0)] * len(records) for c in channels}
    oof_adapted = {c: np.zeros((len(records), len(labels))) for c in channels}
    for split in speaker_folds(records, val_speakers=0, seed=0):
        net = fitted(np.isin(np.arange(len(records)), split.train))
        for name, test_specs in (("wideband", specs), ("telephone", phone_specs)):
            segments, clip, _ = channels[name]
            clf = EmotionClassifier(copy.deepcopy(net), config, labels)
            for i in split.test:
                oof[name][i] = clf.segment_proba(segments[clip == i])
            test = [test_specs[i] for i in split.test]
            weight = adaptation_set([], test, config, min_seconds=0).weight(PRIOR_SECONDS)
            adapt_voice(clf.model, test, config, weight)  # type: ignore[arg-type]  # a VoiceNet
            oof_adapted[name][split.test] = average_windows(test, config, clf.segment_proba, len(labels))
    temperature = fit_temperature(window_logits(oof["wideband"]), y)
    evaluation: dict[str, float] = {"temperature": round(temperature, 4)}
    for channel in channels:
        prefix = "" if channel == "wideband" else "telephone_"
        for name, probs in ((prefix, np.stack([w.mean(axis=0) for w in oof[channel]])),
                            (f"{prefix}adapted_", oof_adapted[channel])):
            s = scores(y, probs.argmax(1), len(labels))
            folded, classes = fold_probabilities(probs, labels)
            s4 = score_subset([fold_emotion(r.emotion) for r in records], folded, classes, FOUR_CLASSES)
            evaluation |= {f"{name}accuracy": round(s["accuracy"], 4), f"{name}uar": round(s["uar"], 4),
                           f"{name}uar4": round(s4.uar, 4)}

    final = fitted(np.ones(len(records), bool))
    clf = EmotionClassifier(final, config, labels)
    clf.temperature = temperature
    clf.calibration = {"temperature": temperature, "method": "temperature scaling",
                       "fitted_on": "actor-6fold out-of-fold window logits (all folds together)"}
    n_windows = sum(len(channels[c][2]) for c in train_on)
    clf.save(args.out, report={"recipe": "voice encoder (Resemblyzer, frozen) + logistic regression head",
                               "head_c": args.c, "phone_copies": args.phone_copies, "n_clips": len(records),
                               "n_windows": n_windows, "skipped": errors, "evaluation": evaluation,
                               "config": config.to_dict(), "seconds": round(time.perf_counter() - start, 1)},
             onnx=True)
    print(json.dumps(evaluation))
    print(f"wrote {args.out} ({len(records)} clips, {n_windows} windows) in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
