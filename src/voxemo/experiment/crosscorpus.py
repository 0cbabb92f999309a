"""Cross-corpus evaluation: train on some corpora, test on another, score only the classes both share.

One model is trained on every training clip for the recipe's fixed number of epochs (``TrainConfig.epochs``);
nothing about the test corpus (not its labels, not an epoch count) is looked at before it is predicted. The
model's probabilities are then folded (:data:`~voxemo.core.labels.CALM_AS_NEUTRAL`: calm's probability is added to
neutral's) and each test clip whose folded emotion is a shared class (:func:`~voxemo.core.labels.shared_classes`)
is predicted as the most probable *shared* class. Test clips of other classes (Emo-DB's boredom when training on
RAVDESS) are left out and counted. The same is reported over angry/happy/neutral/sad when all four are shared,
the subset most cross-corpus papers compare on.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix

from voxemo.core.config import Config
from voxemo.core.errors import CorpusError
from voxemo.core.labels import TAXONOMY, fold_emotion, shared_classes
from voxemo.core.records import Utterance
from voxemo.experiment.metrics import scores
from voxemo.experiment.multicorpus import corpora, corpus_weights, model_labels, unique_speakers
from voxemo.experiment.results import (
    ClassRecall,
    CrossCorpusPrediction,
    CrossCorpusResult,
    CrossCorpusScores,
    SubsetScores,
)

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


def cross_corpus(train_records: Sequence[Utterance], train_specs: Sequence[np.ndarray],
                 test_records: Sequence[Utterance], test_specs: Sequence[np.ndarray], config: Config, *,
                 aug_specs: Sequence[Sequence[np.ndarray]] | None = None, fold: Mapping[str, str] | None = None,
                 adapt: bool = False, shots: Sequence[int] = (), draws: int = 5, threads: int = 1,
                 progress: bool = True) -> CrossCorpusResult:
    """Train one model on the training corpora and score it on the test corpus (see the module docstring).

    The model predicts the union of the training classes (:func:`~voxemo.experiment.multicorpus.model_labels`); several
    training corpora are sampled equally (:func:`~voxemo.experiment.multicorpus.corpus_weights`). ``aug_specs`` are
    augmented copies of the training clips only.

    With ``adapt`` the model is also adapted without labels to the test corpus' audio (every clip's speech; its
    labels only score) and scored again (``adapted``). With ``shots`` (labelled clips per class, e.g. 0, 2, 5, 10,
    20) the few-shot learning curve of :func:`~voxemo.experiment.fewshot.few_shot_curve` is added, over ``draws``
    speaker splits, starting from the adapted model when ``adapt``.

    Returns
    -------
    CrossCorpusResult
        :func:`score_cross_corpus`'s result (``scores``) with ``train``/``test`` (clips per corpus),
        ``model_labels``, ``epochs``, ``seconds`` and ``config``; ``adapted``, ``adaptation`` and ``shots`` as asked.
    """
    from voxemo.experiment.fewshot import few_shot_curve
    from voxemo.nn.train import predict_specs, train_model

    overlap = {r.path for r in train_records} & {r.path for r in test_records}
    if overlap:
        raise CorpusError(f"{len(overlap)} clips are in both the training and the test data, e.g. {min(overlap)}")
    labels = model_labels(train_records)
    train_emotions = [r.emotion for r in train_records]
    shared_classes(train_emotions, [r.emotion for r in test_records], fold)  # fail on bad labels before training
    start = time.perf_counter()
    y = np.array([labels.index(e) for e in train_emotions])
    res = train_model(train_specs, y, len(labels), config, aug_specs=aug_specs, weights=corpus_weights(train_records),
                      speakers=[r.speaker for r in unique_speakers(train_records)], threads=threads,
                      progress=progress, desc="train")
    probs = predict_specs(res.model, test_specs, config)
    result = score_cross_corpus(test_records, probs, labels, train_emotions, fold=fold)
    model, adapted, adaptation = res.model, None, None
    if adapt:
        model, adaptation = adapt_to(res.model, train_specs, test_records, test_specs, config)
        adapted = score_cross_corpus(test_records, predict_specs(model, test_specs, config), labels, train_emotions,
                                     fold=fold)
    curve = few_shot_curve(model, config, labels, train_emotions, test_records, test_specs, shots, draws=draws,
                           seed=config.train.seed) if shots else []
    count = lambda recs: {c: sum(r.corpus == c for r in recs) for c in corpora(recs)}  # noqa: E731
    return CrossCorpusResult(train=count(train_records), test=count(test_records), model_labels=tuple(labels),
                             epochs=len(res.history), seconds=time.perf_counter() - start, scores=result,
                             config=config, adapted=adapted, adaptation=adaptation, shots=tuple(curve))


def adapt_to(model: Any, train_specs: Sequence[np.ndarray], records: Sequence[Utterance],
             specs: Sequence[np.ndarray], config: Config) -> tuple[Any, dict[str, Any]]:
    """A copy of ``model`` adapted without labels to ``specs`` (:func:`voxemo.nn.adapt.adapt_norm_stats`, the
    training speech's moments measured on ``train_specs``), and its adaptation record."""
    import copy

    from voxemo.inference.adaptset import PRIOR_SECONDS, adaptation_set
    from voxemo.nn.adapt import adapt_norm_stats, measure_source

    aset = adaptation_set([r.path for r in records], specs, config, min_seconds=0)
    weight = aset.weight(PRIOR_SECONDS)
    adapted = copy.deepcopy(model)
    adapt_norm_stats(adapted, specs, measure_source(model, train_specs), weight)
    return adapted, aset.record(weight, [], base="the model trained above")
