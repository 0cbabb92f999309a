"""A batch adapted to its own inputs (``predict --adapt``): :class:`AdaptOptions` says how, :func:`adapted_groups`
adapts the model to the speech among the inputs, one copy per group with ``--adapt-by``, and says which inputs
each copy predicts. :func:`~voxemo.inference.batch.predict_batch` then runs its one loop once per copy.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from voxemo.core.errors import AdaptationError, ConfigError
from voxemo.inference.adaptset import adaptation_set, collect_adaptation_set
from voxemo.io.manifest import MANIFEST_EXTENSIONS, manifest_column

if TYPE_CHECKING:
    from voxemo.inference.classifier import Classifier

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AdaptOptions:
    """How a batch adapts its model to its own inputs before predicting them
    (:func:`~voxemo.inference.batch.predict_batch`'s ``adapt``).

    Attributes
    ----------
    by : str or None
        A manifest column (e.g. ``"speaker"``): a copy of the model is adapted to each group of inputs sharing its
        value. A group with less speech than ``min_seconds``, and an input without a value, get the model adapted
        on all the inputs.
    prior_seconds, min_seconds : float or None
        As for :meth:`~voxemo.inference.classifier.Classifier.adapt` (None:
        :data:`~voxemo.inference.adaptset.PRIOR_SECONDS`, :data:`~voxemo.inference.adaptset.MIN_SECONDS`).
    """

    by: str | None = None
    prior_seconds: float | None = None
    min_seconds: float | None = None


def adapted_groups(inputs: Sequence[str | os.PathLike[str]], items: Sequence[tuple[str, str | None]],
                   clf: Classifier, options: AdaptOptions, *, jobs: int = 1,
                   progress: bool = False) -> list[tuple[Classifier, list[tuple[str, str | None]]]]:
    """``clf`` adapted to the speech among ``items`` (``inputs`` expanded by
    :func:`~voxemo.io.discovery.expand_inputs`), and the items each adapted copy predicts: one pair without
    ``options.by``; with it, the pooled model's pair first (inputs without a group, or whose group has too little
    speech of its own: a warning names those groups), then one pair per group in sorted order.

    Raises
    ------
    AdaptationError
        Too little speech among all the inputs.
    ConfigError
        ``options.by`` is given and no manifest among ``inputs`` gives that column for an input with speech.
    """
    aset = collect_adaptation_set([p for p, error in items if error is None], clf.config, speech=clf.speech,
                                  jobs=jobs, progress=progress, min_seconds=options.min_seconds, warn=False)
    pooled = clf.adapted(aset, prior_seconds=options.prior_seconds)
    if not options.by:
        return [(pooled, list(items))]
    groups = _groups(inputs, aset.paths, options.by)
    members: dict[str, list[int]] = {}  # group -> indices into aset, in one pass
    for i, p in enumerate(aset.paths):
        if p in groups:
            members.setdefault(groups[p], []).append(i)
    own: dict[str, Classifier] = {}
    too_little = []
    for key in sorted(members):
        try:
            part = adaptation_set([aset.paths[i] for i in members[key]], [aset.specs[i] for i in members[key]],
                                  clf.config, min_seconds=options.min_seconds)
            own[key] = clf.adapted(part, prior_seconds=options.prior_seconds)
        except AdaptationError:
            too_little.append(key)
    if too_little:
        log.warning("%s %s: too little speech of their own; adapted on all the inputs instead", options.by,
                    ", ".join(too_little[:10]) + (f" and {len(too_little) - 10} more" if len(too_little) > 10 else ""))
    rest: list[tuple[str, str | None]] = []  # the pooled model's items
    parts: dict[str, list[tuple[str, str | None]]] = {key: [] for key in own}
    for item in items:
        group = groups.get(item[0])
        (rest if group is None or group not in parts else parts[group]).append(item)
    return [(pooled, rest)] * bool(rest) + [(own[key], chosen) for key, chosen in parts.items()]


def _groups(inputs: Sequence[str | os.PathLike[str]], speech: Sequence[str], by: str) -> dict[str, str]:
    """``{path: group}`` for the inputs with speech, from the ``by`` column of the manifests among ``inputs``.

    Raises
    ------
    ConfigError
        No manifest among the inputs gives ``by`` for any of them.
    """
    values: dict[str, str] = {}
    for raw in inputs:
        if os.fspath(raw).lower().endswith(MANIFEST_EXTENSIONS):
            values.update(manifest_column(raw, by))
    found = {p: values[p] for p in speech if p in values}
    if not found:
        raise ConfigError(f"--adapt-by {by}: no input has a {by}; give manifests (.csv or .jsonl) with a {by!r} column")
    return found
