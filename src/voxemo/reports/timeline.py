"""A timeline's speech segments as CSV, one probability column per class."""

from __future__ import annotations

import csv
from typing import IO

from voxemo.inference.timeline import Timeline


def write_csv(result: Timeline, out: IO[str]) -> None:
    """Write the timeline's segments as CSV: start, end, emotion, confidence, then one column per class."""
    classes = list(result.segments[0].probabilities) if result.segments else []
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["start", "end", "emotion", "confidence", *classes])
    for s in result.segments:
        writer.writerow([s.start, s.end, s.emotion, s.confidence, *(s.probabilities[c] for c in classes)])
