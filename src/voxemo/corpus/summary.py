"""What a corpus holds: clips per emotion, per speaker and per gender, as a dict and as text."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from voxemo.core.labels import TAXONOMY
from voxemo.core.records import Utterance


def corpus_summary(records: Sequence[Utterance]) -> dict[str, Any]:
    """Counts of ``records`` per corpus, emotion (in taxonomy order), speaker and gender.

    >>> from voxemo.core.records import Utterance
    >>> recs = [Utterance("a.wav", "emodb", "03", "angry", "male"), Utterance("b.wav", "emodb", "08", "boredom")]
    >>> s = corpus_summary(recs)
    >>> s["clips"], s["emotions"], s["speakers"]["03"]
    (2, {'angry': 1, 'boredom': 1}, {'gender': 'male', 'clips': 1})
    """
    emotions = Counter(r.emotion for r in records)
    speakers: dict[str, dict[str, Any]] = {}
    for r in sorted(records, key=lambda r: (r.corpus, r.speaker)):
        key = r.speaker if len({x.corpus for x in records}) == 1 else f"{r.corpus}:{r.speaker}"
        entry = speakers.setdefault(key, {"gender": r.gender, "clips": 0})
        entry["clips"] += 1
    return {
        "clips": len(records),
        "corpora": dict(Counter(r.corpus for r in records)),
        "emotions": {e: emotions[e] for e in TAXONOMY if emotions[e]},
        "speakers": speakers,
        "genders": dict(Counter(r.gender or "unknown" for r in records)),
    }


def format_summary(summary: dict[str, Any]) -> str:
    """A plain-text table of :func:`corpus_summary`'s counts."""
    lines = [f"{summary['clips']} clips, {len(summary['speakers'])} speakers, {len(summary['emotions'])} emotions "
             f"({', '.join(f'{k} {v}' for k, v in summary['corpora'].items())})", "", "emotion      clips"]
    lines += [f"{e:<12} {n:>5}" for e, n in summary["emotions"].items()]
    lines += ["", "speaker      gender   clips"]
    lines += [f"{s:<12} {v['gender'] or '-':<8} {v['clips']:>5}" for s, v in summary["speakers"].items()]
    lines += ["", "gender       clips"] + [f"{g:<12} {n:>5}" for g, n in summary["genders"].items()]
    return "\n".join(lines)
