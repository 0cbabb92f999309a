"""The emotion taxonomy voxemo predicts."""

from __future__ import annotations

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
