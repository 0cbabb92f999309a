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
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from voxemo.core.config import Config
from voxemo.core.errors import CorpusError
from voxemo.core.labels import shared_classes
from voxemo.core.records import Utterance
from voxemo.dsp.scoring import average_windows
from voxemo.experiment.crossscore import FOUR_CLASSES, fold_probabilities, score_cross_corpus, score_subset
from voxemo.experiment.fewshot import few_shot_curve
from voxemo.experiment.multicorpus import corpora, corpus_weights, model_labels, unique_speakers
from voxemo.experiment.results import CrossCorpusResult
from voxemo.inference.adaptset import adaptation_set
from voxemo.inference.torch_backend import EmotionClassifier

if TYPE_CHECKING:
    from voxemo.inference.classifier import Classifier

__all__ = ["FOUR_CLASSES", "adapt_to", "cross_corpus", "fold_probabilities", "score_cross_corpus", "score_subset",
           "score_trained"]


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
    clf, adapted, adaptation = EmotionClassifier(res.model, config, labels), None, None
    if adapt:
        clf = adapt_to(res.model, train_specs, test_records, test_specs, config, labels)
        adaptation = clf.adaptation.to_dict() if clf.adaptation is not None else None
        adapted = score_cross_corpus(test_records, predict_specs(clf.model, test_specs, config), labels,
                                     train_emotions, fold=fold)
    curve = few_shot_curve(clf, train_emotions, test_records, test_specs, shots, draws=draws,
                           seed=config.train.seed) if shots else []
    count = lambda recs: {c: sum(r.corpus == c for r in recs) for c in corpora(recs)}  # noqa: E731
    return CrossCorpusResult(train=count(train_records), test=count(test_records), model_labels=tuple(labels),
                             epochs=len(res.history), seconds=time.perf_counter() - start, scores=result,
                             config=config, adapted=adapted, adaptation=adaptation, shots=tuple(curve))


def score_trained(clf: Classifier, test_records: Sequence[Utterance], test_specs: Sequence[np.ndarray], *,
                  fold: Mapping[str, str] | None = None, adapt: bool = False, shots: Sequence[int] = (),
                  draws: int = 5, seed: int = 0) -> CrossCorpusResult:
    """Score a model trained elsewhere (a model folder, e.g. a shipped one) on a labelled corpus, as
    :func:`cross_corpus` scores the model it trains: its calibrated probabilities, as every prediction path computes
    them, folded and scored over the shared classes. ``adapt`` also scores it adapted without labels to the test
    clips' speech (:meth:`~voxemo.inference.classifier.Classifier.adapted`), ``shots`` adds the few-shot curve
    (starting from the adapted model with ``adapt``). Nothing is trained on the test labels except the few-shot
    fine-tuning, which scores only the other speakers."""

    labels = [str(c) for c in clf.classes_]
    shared_classes(labels, [r.emotion for r in test_records], fold)  # fail on unusable labels before predicting
    start = time.perf_counter()

    def scored(c: Classifier) -> Any:
        probs = average_windows(test_specs, c.config, c.calibrated_segment_proba, len(labels))
        return score_cross_corpus(test_records, probs, labels, labels, fold=fold)

    result, model, adapted, adaptation = scored(clf), clf, None, None
    if adapt:
        aset = adaptation_set([r.path for r in test_records], test_specs, clf.config, min_seconds=0)
        model = clf.adapted(aset)
        adapted = scored(model)
        adaptation = model.adaptation.to_dict() if model.adaptation is not None else None
    curve = few_shot_curve(model, labels, test_records, test_specs, shots, draws=draws, seed=seed) if shots else []
    count = {c: sum(r.corpus == c for r in test_records) for c in corpora(test_records)}
    return CrossCorpusResult(train={}, test=count, model_labels=tuple(labels), epochs=0,
                             seconds=time.perf_counter() - start, scores=result, config=clf.config, adapted=adapted,
                             adaptation=adaptation, shots=tuple(curve), model=clf.origin())


def adapt_to(model: Any, train_specs: Sequence[np.ndarray], records: Sequence[Utterance],
             specs: Sequence[np.ndarray], config: Config, labels: Sequence[str] | None = None) -> Any:
    """A classifier of a copy of the network ``model`` adapted without labels to ``specs`` by the classifier's own
    mechanism (:meth:`voxemo.inference.torch_backend.EmotionClassifier.adapted`, as ``voxemo adapt`` runs it), the
    training speech's moments measured on ``train_specs``; ``model`` is not changed."""
    from voxemo.nn.adapt import measure_source

    clf = EmotionClassifier(model, config, labels or [str(i) for i in range(model.n_classes)])
    clf.source_stats = measure_source(model, train_specs)
    return clf.adapted(adaptation_set([r.path for r in records], specs, config, min_seconds=0))
