"""Training on several corpora at once: the model's label set, unique speakers, validation speakers from every
corpus, and per-clip sampling weights that let each corpus contribute equally.

A corpus is identified by :attr:`Utterance.corpus <voxemo.core.records.Utterance>`. With one corpus every function
here leaves things exactly as single-corpus training always had them (same labels, speakers, validation
speakers, no weights), so an 8-class RAVDESS model is trained bit for bit as before.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Sequence

import numpy as np

from voxemo.core.errors import CorpusError
from voxemo.core.labels import TAXONOMY
from voxemo.core.records import Utterance
from voxemo.experiment.splits import pick_validation_speakers

log = logging.getLogger(__name__)


def corpora(records: Sequence[Utterance]) -> list[str]:
    """The corpus names of ``records``, sorted.

    >>> from voxemo.core.records import Utterance
    >>> corpora([Utterance("b.wav", "tess", "OAF", "sad"), Utterance("a.wav", "emodb", "03", "sad")])
    ['emodb', 'tess']
    """
    return sorted({r.corpus for r in records})


def model_labels(records: Sequence[Utterance]) -> tuple[str, ...]:
    """The classes a model trained on ``records`` predicts: every emotion present, in :data:`TAXONOMY` order.

    RAVDESS alone gives :data:`~voxemo.core.labels.EMOTIONS` in its usual order; adding Emo-DB appends ``boredom``.

    >>> from voxemo.core.records import Utterance
    >>> model_labels([Utterance("a.wav", "emodb", "03", e) for e in ("boredom", "sad", "angry", "sad")])
    ('sad', 'angry', 'boredom')
    """
    present = {r.emotion for r in records}
    if not present:
        raise CorpusError("no clips to train on")
    return tuple(e for e in TAXONOMY if e in present)


def unique_speakers(records: Sequence[Utterance]) -> list[Utterance]:
    """``records`` with speakers prefixed by their corpus (``"emodb:03"``) when there is more than one corpus.

    Speaker ids are unique only within a corpus (RAVDESS ``"03"`` and Emo-DB ``"03"`` are different people);
    the prefix keeps speaker-level splits from treating them as one voice. One corpus: returned unchanged.
    """
    if len(corpora(records)) < 2:
        return list(records)
    return [dataclasses.replace(r, speaker=f"{r.corpus}:{r.speaker}") for r in records]


def validation_speakers(records: Sequence[Utterance], n: int, seed: int) -> list[str]:
    """About ``n`` validation speakers drawn from every corpus in proportion to its speaker count.

    Corpus *c* with ``k_c`` of the ``K`` speakers gives ``max(1, round(n * k_c / K))`` of them (genders
    alternating, :func:`~voxemo.experiment.splits.pick_validation_speakers`), always leaving it at least one training
    speaker; a corpus with a single speaker gives none. With one corpus this is exactly
    ``pick_validation_speakers(records, speakers, n, seed)``, with ``n`` capped one below the speaker count.

    Parameters
    ----------
    records : sequence of Utterance
        With speakers already unique across corpora (:func:`unique_speakers`).
    n : int
        Validation speakers wanted in all (``TrainConfig.val_speakers``).
    seed : int
    """
    names = corpora(records)
    by_corpus = {c: sorted({r.speaker for r in records if r.corpus == c}) for c in names}
    if len(names) == 1:
        speakers = by_corpus[names[0]]
        return pick_validation_speakers(records, speakers, min(n, len(speakers) - 1), seed)
    total = sum(len(s) for s in by_corpus.values())
    chosen: list[str] = []
    for c, speakers in by_corpus.items():
        k = min(max(1, round(n * len(speakers) / total)), len(speakers) - 1)
        if k < 1:
            log.warning("%s: only one speaker, none held out for validation", c)
            continue
        chosen += pick_validation_speakers([r for r in records if r.corpus == c], speakers, k, seed)
    return sorted(chosen)


def corpus_weights(records: Sequence[Utterance]) -> np.ndarray | None:
    """Per-clip sampling weights under which every corpus contributes equally, or None for a single corpus.

    Clip *i* of corpus *c* (``n_c`` clips, ``C`` corpora) gets ``1 / (C * n_c)``; the weights sum to 1.
    :func:`voxemo.nn.train.train_model` draws each epoch's clips with replacement by these weights, so in
    expectation every corpus fills ``1 / C`` of an epoch whatever its size.

    >>> from voxemo.core.records import Utterance
    >>> recs = [Utterance(f"{i}.wav", "big", "s1", "sad") for i in range(3)]
    >>> recs.append(Utterance("x.wav", "small", "s2", "sad"))
    >>> corpus_weights(recs).round(3).tolist()
    [0.167, 0.167, 0.167, 0.5]
    """
    counts = Counter(r.corpus for r in records)
    if len(counts) < 2:
        return None
    return np.array([1.0 / (len(counts) * counts[r.corpus]) for r in records])
