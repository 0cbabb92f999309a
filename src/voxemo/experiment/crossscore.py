"""Scoring a model's predictions on another corpus: only the classes both sides share, calm folded into neutral, and
again over angry/happy/neutral/sad (see :mod:`voxemo.experiment.crosscorpus`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.metrics import confusion_matrix

from voxemo.core.errors import CorpusError
from voxemo.core.labels import TAXONOMY, fold_emotion, shared_classes
from voxemo.core.records import Utterance
from voxemo.experiment.metrics import scores
from voxemo.experiment.results import ClassRecall, CrossCorpusPrediction, CrossCorpusScores, SubsetScores

#: The four classes most corpora share, scored separately when all are shared (in TAXONOMY order).
FOUR_CLASSES: tuple[str, ...] = ("neutral", "happy", "sad", "angry")


def fold_probabilities(probs: np.ndarray, labels: Sequence[str],
                       fold: Mapping[str, str] | None = None) -> tuple[np.ndarray, tuple[str, ...]]:
    """Merge the probability columns of folded classes by summing them.

    Parameters
    ----------
    probs : np.ndarray, shape (n_clips, len(labels))
    labels : sequence of str
        The model's classes, the column order of ``probs``.
    fold : mapping, optional
        Default :data:`~voxemo.core.labels.CALM_AS_NEUTRAL`.

    Returns
    -------
    (np.ndarray, tuple of str)
        The folded probabilities (n_clips, n_folded) and their classes in :data:`TAXONOMY` order.

    Examples
    --------
    >>> p, classes = fold_probabilities(np.array([[0.1, 0.3, 0.6]]), ["neutral", "calm", "sad"])
    >>> classes, p.round(2).tolist()
    (('neutral', 'sad'), [[0.4, 0.6]])
    """
    probs = np.asarray(probs, dtype=np.float64)
    target = [fold_emotion(c, fold) for c in labels]
    classes = tuple(e for e in TAXONOMY if e in target)
    out = np.zeros((len(probs), len(classes)))
    for j, t in enumerate(target):
        out[:, classes.index(t)] += probs[:, j]
    return out, classes


def score_subset(true: Sequence[str], probs: np.ndarray, labels: Sequence[str],
                 classes: Sequence[str]) -> SubsetScores:
    """Score the clips whose true emotion is in ``classes``, each predicted as its most probable of ``classes``.

    Parameters
    ----------
    true : sequence of str
        Each test clip's (already folded) emotion.
    probs : np.ndarray, shape (n_clips, len(labels))
        Folded probabilities.
    labels : sequence of str
        The columns of ``probs``; must include every class of ``classes``.
    classes : sequence of str
        The classes scored (the confusion matrix's order).

    Returns
    -------
    SubsetScores
        ``labels``, ``n``, ``accuracy``, ``uar``, ``macro_f1``, ``confusion`` (rows true, columns predicted),
        ``per_class`` (recall and count per class), ``kept`` (indices of the scored clips) and ``predicted``
        (the class predicted for each of them).
    """
    classes = list(classes)
    cols = [list(labels).index(c) for c in classes]
    kept = np.array([i for i, t in enumerate(true) if t in classes], dtype=int)
    if not len(kept):
        raise CorpusError(f"no test clip is labelled one of {', '.join(classes)}")
    y = np.array([classes.index(true[i]) for i in kept])
    p = np.asarray(probs)[kept][:, cols].argmax(1)
    cm = confusion_matrix(y, p, labels=range(len(classes)))
    per_class = tuple(ClassRecall(c, int(cm[k].sum()), float(cm[k, k] / cm[k].sum()) if cm[k].sum() else 0.0)
                      for k, c in enumerate(classes))
    s = scores(y, p, len(classes))
    return SubsetScores(tuple(classes), int(len(kept)), s["accuracy"], s["uar"], s["macro_f1"], cm, per_class,
                        kept=tuple(kept.tolist()), predicted=tuple(classes[k] for k in p))


def score_cross_corpus(test_records: Sequence[Utterance], probs: np.ndarray, labels: Sequence[str],
                       train_emotions: Sequence[str], *, fold: Mapping[str, str] | None = None) -> CrossCorpusScores:
    """Score a model's test-corpus probabilities on the classes both sides share.

    Parameters
    ----------
    test_records : sequence of Utterance
    probs : np.ndarray, shape (len(test_records), len(labels))
        The model's probabilities (before folding).
    labels : sequence of str
        The model's classes.
    train_emotions : sequence of str
        The training clips' emotions (decides which classes are shared).
    fold : mapping, optional
        Classes merged before scoring; default :data:`~voxemo.core.labels.CALM_AS_NEUTRAL`.

    Returns
    -------
    CrossCorpusScores
        ``shared_classes``, ``excluded`` (test clips left out per class), ``shared`` (the :func:`score_subset`
        metrics over the shared classes), ``predictions`` (one row per scored clip) and ``four_class`` (the same
        over angry/happy/neutral/sad, or None unless all four are shared).
    """
    test_emotions = [r.emotion for r in test_records]
    shared = shared_classes(train_emotions, test_emotions, fold)
    if not shared:
        raise CorpusError(f"the training classes ({', '.join(sorted(set(train_emotions)))}) and the test classes "
                          f"({', '.join(sorted(set(test_emotions)))}) have none in common")
    folded, folded_labels = fold_probabilities(probs, labels, fold)
    true = [fold_emotion(e, fold) for e in test_emotions]
    main = score_subset(true, folded, folded_labels, shared)
    predictions = []
    for i, pred in zip(main.kept, main.predicted):
        r = test_records[i]
        predictions.append(CrossCorpusPrediction(r.path, r.corpus, r.speaker, r.gender, r.intensity, true[i], pred,
                                                 round(float(folded[i, folded_labels.index(pred)]), 4)))
    four = None
    if set(FOUR_CLASSES) <= set(shared):
        four = score_subset(true, folded, folded_labels, FOUR_CLASSES)
    excluded = Counter(t for t in true if t not in shared)
    return CrossCorpusScores(tuple(shared), dict(sorted(excluded.items())), main, tuple(predictions), four)
