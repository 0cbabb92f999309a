"""The emotion taxonomy voxemo predicts, and the classes two corpora can be compared on.

Every corpus loader maps its own label codes onto these names through an explicit table (see the modules in
:mod:`voxemo.corpus`); a code outside its table is a :class:`~voxemo.core.errors.CorpusError`, never "unknown".

The taxonomy is RAVDESS's eight emotions plus the classes other supported corpora record that have no
RAVDESS counterpart. Today that is only Emo-DB's *boredom* (Langeweile): it is kept as its own class, not
dropped and not forced onto "neutral" or "calm", so a model trained on Emo-DB can learn it, and cross-corpus
scoring leaves it out because no other corpus has it (see :func:`shared_classes`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

#: voxemo's eight emotions, in RAVDESS code order (01 … 08). Model outputs follow this order.
EMOTIONS: tuple[str, ...] = (
    "neutral",
    "calm",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgust",
    "surprised",
)

#: Classes of other corpora with no RAVDESS counterpart (Emo-DB's boredom), appended after :data:`EMOTIONS`.
EXTRA_EMOTIONS: tuple[str, ...] = ("boredom",)

#: Every emotion a voxemo record may carry: :data:`EMOTIONS` first (same order), then :data:`EXTRA_EMOTIONS`.
TAXONOMY: tuple[str, ...] = EMOTIONS + EXTRA_EMOTIONS

#: The fold cross-corpus scoring applies by default: RAVDESS's calm counts as neutral, since most corpora
#: record no calm and their neutral clips are calm deliveries.
CALM_AS_NEUTRAL: Mapping[str, str] = {"calm": "neutral"}


def fold_emotion(emotion: str, fold: Mapping[str, str] | None = None) -> str:
    """``emotion`` after ``fold`` (default :data:`CALM_AS_NEUTRAL`); emotions not in the fold are unchanged.

    >>> fold_emotion("calm"), fold_emotion("happy"), fold_emotion("calm", fold={})
    ('neutral', 'happy', 'calm')
    """
    table = CALM_AS_NEUTRAL if fold is None else fold
    return table.get(emotion, emotion)


def shared_classes(train_emotions: Iterable[str], test_emotions: Iterable[str],
                   fold: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The classes a cross-corpus test can score: present on both sides after folding, in :data:`TAXONOMY` order.

    Parameters
    ----------
    train_emotions, test_emotions : iterable of str
        The emotions of the training and the test records (repeats allowed), each in :data:`TAXONOMY`.
    fold : mapping, optional
        Emotions merged before comparing; default :data:`CALM_AS_NEUTRAL`. Pass ``{}`` to merge nothing.

    Raises
    ------
    ValueError
        If an emotion is not in :data:`TAXONOMY` or ``fold`` maps onto one that is not.

    Examples
    --------
    RAVDESS (8 classes) against Emo-DB (7 classes, with boredom):

    >>> ravdess = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
    >>> emodb = ["angry", "boredom", "disgust", "fearful", "happy", "sad", "neutral"]
    >>> shared_classes(ravdess, emodb)
    ('neutral', 'happy', 'sad', 'angry', 'fearful', 'disgust')
    >>> shared_classes(["calm", "happy"], ["neutral", "happy"], fold={})
    ('happy',)
    """
    table = CALM_AS_NEUTRAL if fold is None else fold
    bad = sorted({*table.keys(), *table.values()} - set(TAXONOMY))
    if bad:
        raise ValueError(f"fold names {', '.join(map(repr, bad))}, not in the taxonomy {', '.join(TAXONOMY)}")

    def folded(emotions: Iterable[str], side: str) -> set[str]:
        out = set()
        for e in emotions:
            if e not in TAXONOMY:
                raise ValueError(f"{side} emotion {e!r} is not in the taxonomy {', '.join(TAXONOMY)}")
            out.add(table.get(e, e))
        return out

    both = folded(train_emotions, "train") & folded(test_emotions, "test")
    return tuple(e for e in TAXONOMY if e in both)


def class_index(emotion: str, classes: Sequence[str]) -> int | None:
    """The column of a model's ``classes`` that an emotion label teaches: the label itself, else its folded class
    (:func:`fold_emotion`); None when the model has neither (Emo-DB's boredom for a RAVDESS model).

    >>> class_index("calm", ["neutral", "calm"]), class_index("calm", ["neutral", "sad"])
    (1, 0)
    >>> class_index("boredom", ["neutral", "sad"]) is None
    True
    """
    for e in (emotion, fold_emotion(emotion)):
        if e in classes:
            return list(classes).index(e)
    return None
