"""Few-shot adaptation protocol: how a trained model does on a new corpus after fine-tuning on K labelled clips per
class from some of its speakers, scored on its other speakers only.

Each draw splits the test corpus' speakers in two halves at random (seeded), takes K clips of every shared class from
the first half (the labelled clips a user would provide) and scores the fine-tuned model on every clip of the second
half; K = 0 scores the model as it is on the same half, so the curve's points are comparable. Optionally the model
is first adapted without labels to the test corpus' audio, as a user would do with their unlabelled recordings.
Fine-tuning is the model's own (:meth:`voxemo.inference.classifier.Classifier.tuned`: a CNN's recipe, an encoder
family's refitted linear layer), the mechanism ``voxemo adapt --labelled`` uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from voxemo.core.errors import CorpusError
from voxemo.core.labels import class_index, fold_emotion, shared_classes
from voxemo.core.records import Utterance
from voxemo.dsp.scoring import average_windows
from voxemo.experiment.crossscore import score_cross_corpus
from voxemo.experiment.results import ShotScores
from voxemo.inference.adaptset import LabelledSet
from voxemo.inference.classifier import Classifier
from voxemo.inference.torch_backend import EmotionClassifier

if TYPE_CHECKING:
    from voxemo.nn.finetune import FineTuneConfig


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


def few_shot_curve(clf: Classifier, train_emotions: Sequence[str], records: Sequence[Utterance],
                   specs: Sequence[np.ndarray], ks: Sequence[int], *, draws: int = 5,
                   recipe: FineTuneConfig | None = None, seed: int = 0) -> list[ShotScores]:
    """The learning curve over ``ks`` (see the module docstring); ``clf`` is not changed.

    Parameters
    ----------
    clf : Classifier
        Trained on other corpora (already adapted without labels, when that is part of the protocol); its classes
        are the model's labels.
    recipe : FineTuneConfig, optional
        A CNN's fine-tuning recipe (default: the default recipe; draw ``d`` adds ``100 * d`` to its seed); an
        encoder family has none.
    train_emotions : sequence of str
        The training clips' emotions (decide the shared classes).
    records, specs : the test corpus and its log-mels.
    ks : labelled clips per class, e.g. (0, 2, 5, 10, 20).
    draws : speaker splits and clip draws per K (draw d uses the same speaker split for every K).
    """
    labels = [str(c) for c in clf.classes_]
    shared = shared_classes(train_emotions, [r.emotion for r in records])
    out = []
    for k in ks:
        uar, uar4 = [], []
        for d in range(draws):
            shots, test = draw_shots(records, shared, k, np.random.default_rng([seed, d]))
            m = clf
            if k:
                y = [class_index(records[i].emotion, labels) for i in shots]
                kept = [(i, c) for i, c in zip(shots, y) if c is not None]
                labelled = LabelledSet(tuple(specs[i] for i, _ in kept), tuple(c for _, c in kept),
                                       tuple(records[i].path for i, _ in kept), ())
                drawn = None
                if isinstance(clf, EmotionClassifier):
                    from voxemo.nn.finetune import FineTuneConfig  # a CNN's recipe: torch is there

                    base = recipe or FineTuneConfig()
                    drawn = replace(base, seed=base.seed + 100 * d)
                m = clf.tuned(labelled, drawn)
            test_records = [records[i] for i in test]
            probs = average_windows([specs[i] for i in test], m.config, m.calibrated_segment_proba, len(labels))
            s = score_cross_corpus(test_records, probs, labels, train_emotions)
            uar.append(s.shared.uar)
            if s.four_class is not None:
                uar4.append(s.four_class.uar)
        out.append(ShotScores(int(k), tuple(uar), tuple(uar4) if uar4 else None))
    return out
