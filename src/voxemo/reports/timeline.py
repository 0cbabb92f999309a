"""A timeline's speech segments as CSV, one probability column per class."""

from __future__ import annotations

import csv
from typing import IO, Any


def write_csv(result: dict[str, Any], out: IO[str]) -> None:
    """Write ``result["segments"]`` as CSV: start, end, emotion, confidence, then one column per class."""
    segments = result["segments"]
    classes = list(segments[0]["probabilities"]) if segments else []
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["start", "end", "emotion", "confidence", *classes])
    for s in segments:
        probs = [s["probabilities"][c] for c in classes]
        writer.writerow([s["start"], s["end"], s["emotion"], s["confidence"], *probs])
