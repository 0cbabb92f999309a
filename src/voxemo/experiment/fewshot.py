"""Few-shot adaptation protocol: how a trained model does on a new corpus after fine-tuning on K labelled clips per
class from some of its speakers, scored on its other speakers only.

Each draw splits the test corpus' speakers in two halves at random (seeded), takes K clips of every shared class from
the first half (the labelled clips a user would provide) and scores the fine-tuned model on every clip of the second
half; K = 0 scores the model as it is on the same half, so the curve's points are comparable. Optionally the model
is first adapted without labels to the test corpus' audio (:mod:`voxemo.nn.adapt`), as a user would do with their
unlabelled recordings.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np

from voxemo.core.config import Config
from voxemo.core.errors import CorpusError
from voxemo.core.labels import class_index, fold_emotion, shared_classes
from voxemo.core.records import Utterance
from voxemo.experiment.crossscore import score_cross_corpus
from voxemo.experiment.results import ShotScores
from voxemo.nn.finetune import FineTuneConfig, fine_tune
from voxemo.nn.model import EmotionCNN, EmotionEnsemble
from voxemo.nn.train import predict_specs


def draw_shots(records: Sequence[Utterance], classes: Sequence[str], k: int,
               rng: np.random.Generator) -> tuple[list[int], list[int]]:
    """One draw: (indices of the K-per-class labelled clips from half of the speakers, indices of every clip of the
    other half). A class with fewer than K clips in the labelled half gives all it has."""
    speakers = sorted({r.speaker for r in records})
    if len(speakers) < 2:
        raise CorpusError(f"the few-shot protocol needs at least 2 speakers in the test data, found {len(speakers)}")
    labelled_half = set(rng.permutation(speakers)[: len(speakers) // 2].tolist())
    test = [i for i, r in enumerate(records) if r.speaker not in labelled_half]
    shots: list[int] = []
    for c in classes:
        pool = [i for i, r in enumerate(records) if r.speaker in labelled_half and fold_emotion(r.emotion) == c]
        shots += sorted(rng.choice(pool, size=min(k, len(pool)), replace=False).tolist()) if k and pool else []
    return shots, test


def few_shot_curve(model: EmotionCNN | EmotionEnsemble, config: Config, labels: Sequence[str],
                   train_emotions: Sequence[str], records: Sequence[Utterance], specs: Sequence[np.ndarray],
                   ks: Sequence[int], *, draws: int = 5, recipe: FineTuneConfig | None = None,
                   seed: int = 0) -> list[ShotScores]:
    """The learning curve over ``ks`` (see the module docstring); ``model`` is not changed.

    Parameters
    ----------
    model : EmotionCNN or EmotionEnsemble
        Trained on other corpora (already adapted without labels, when that is part of the protocol).
    labels : sequence of str
        The model's classes.
    train_emotions : sequence of str
        The training clips' emotions (decide the shared classes).
    records, specs : the test corpus and its log-mels.
    ks : labelled clips per class, e.g. (0, 2, 5, 10, 20).
    draws : speaker splits and clip draws per K (draw d uses the same speaker split for every K).
    """
    recipe = recipe or FineTuneConfig()
    shared = shared_classes(train_emotions, [r.emotion for r in records])
    out = []
    for k in ks:
        uar, uar4 = [], []
        for d in range(draws):
            shots, test = draw_shots(records, shared, k, np.random.default_rng([seed, d]))
            m = model
            if k:
                y = [class_index(records[i].emotion, labels) for i in shots]
                kept = [(i, c) for i, c in zip(shots, y) if c is not None]
                m = copy.deepcopy(model)
                fine_tune(m, [specs[i] for i, _ in kept], np.array([c for _, c in kept]), config,
                          FineTuneConfig(recipe.scope, recipe.steps, recipe.lr, recipe.l2sp, recipe.seed + 100 * d))
            test_records = [records[i] for i in test]
            probs = predict_specs(m, [specs[i] for i in test], config)
            s = score_cross_corpus(test_records, probs, labels, train_emotions)
            uar.append(s.shared.uar)
            if s.four_class is not None:
                uar4.append(s.four_class.uar)
        out.append(ShotScores(int(k), tuple(uar), tuple(uar4) if uar4 else None))
    return out
