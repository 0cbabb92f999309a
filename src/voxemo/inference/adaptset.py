"""The audio a model adapts to: :class:`AdaptationSet` holds the log-mels of the usable speech among some inputs, and
how much of it there is; :func:`collect_adaptation_set` builds one from files, folders and manifests
(:func:`voxemo.inference.selfadapt.adapted_groups` adapts a model to a batch's own inputs with it);
:class:`AdaptationRecord` is what a model keeps of an adaptation.

A file counts when it decodes, has speech (:func:`voxemo.dsp.speech.speech_presence`) and keeps at least
``min_duration`` seconds after trimming; any other is skipped with its one-line cause. :class:`LabelledSet` and
:func:`collect_labelled_set` do the same for labelled clips (few-shot fine-tuning). The amount decides how far
the model moves: the target's share of each statistic is ``s / (s + prior_seconds)`` for ``s`` seconds of speech
(shrinkage towards the training statistics), and below ``min_seconds`` the set is refused.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from voxemo.core.config import ADAPT_MIN_SECONDS, ADAPT_PRIOR_SECONDS, Config
from voxemo.core.errors import AdaptationError
from voxemo.core.labels import class_index
from voxemo.core.parallel import pmap
from voxemo.dsp.speech import SpeechConfig
from voxemo.inference.reading import analyse_job, why_unused
from voxemo.io.discovery import expand_inputs

log = logging.getLogger(__name__)

#: seconds of speech below which an adaptation set is refused (docs/results.md, "Adaptation")
MIN_SECONDS = ADAPT_MIN_SECONDS

#: seconds of speech at which the target's statistics and the training statistics weigh equally
PRIOR_SECONDS = ADAPT_PRIOR_SECONDS


@dataclass(frozen=True)
class AdaptationRecord:
    """What changed an adapted or fine-tuned model: ``adaptation.json`` in its folder, its model card, and
    :attr:`Classifier.adaptation <voxemo.inference.classifier.Classifier.adaptation>`; :meth:`to_dict` is its JSON.

    Attributes
    ----------
    method : str
        What moved: normalisation statistics, the encoder features' standardisation, or few-shot fine-tuning.
    base_model : str
        The folder (or shipped model) it started from.
    clips, skipped : int
        Clips used, and inputs left out (unreadable, no speech, too short, or of another emotion).
    list_sha256 : str
        SHA-256 of the used clips' paths, one per line: which list it was adapted on.
    date : str
        UTC, ISO 8601.
    speech_seconds, weight : float or None
        Without labels: seconds of speech, and the target's share of each statistic (:meth:`AdaptationSet.weight`).
    layers : list of list of dict
        Without labels: per member, each layer's ``{"layer", "mean_shift", "std_ratio"}``.
    per_class, recipe, final_loss :
        With labels: clips per class, the fine-tuning recipe, each member's last loss.
    previous : AdaptationRecord or None
        The adaptation this one started from.
    """

    method: str
    base_model: str
    clips: int
    skipped: int
    list_sha256: str
    date: str
    speech_seconds: float | None = None
    weight: float | None = None
    layers: list[list[dict[str, Any]]] = dataclasses.field(default_factory=list)
    per_class: dict[str, int] | None = None
    recipe: dict[str, Any] | None = None
    final_loss: list[float] | None = None
    previous: AdaptationRecord | None = None

    @property
    def labelled(self) -> bool:
        """Whether this was few-shot fine-tuning on labelled clips (else adaptation without labels)."""
        return self.recipe is not None

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``adaptation.json``, keys in the order earlier versions wrote them."""
        head: dict[str, Any] = {"method": self.method, "base_model": self.base_model, "clips": self.clips,
                                "skipped": self.skipped}
        body: dict[str, Any]
        if self.labelled:
            body = {"per_class": self.per_class, "list_sha256": self.list_sha256, "recipe": self.recipe,
                    "final_loss": self.final_loss, "date": self.date}
        else:
            seconds = self.speech_seconds or 0.0
            body = {"speech_seconds": seconds, "speech_hours": round(seconds / 3600, 4),
                    "list_sha256": self.list_sha256, "weight": self.weight, "date": self.date, "layers": self.layers}
        return {**head, **body, **({"previous": self.previous.to_dict()} if self.previous else {})}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AdaptationRecord:
        """Read ``adaptation.json`` (any version: a key it lacks takes its default); a malformed record is an
        :class:`~voxemo.core.errors.AdaptationError`."""
        try:
            previous = d.get("previous")
            return cls(str(d.get("method", "")), str(d.get("base_model", "")), int(d.get("clips", 0)),
                       int(d.get("skipped", 0)), str(d.get("list_sha256", "")), str(d.get("date", "")),
                       _optional_float(d.get("speech_seconds")), _optional_float(d.get("weight")),
                       list(d.get("layers") or []), d.get("per_class"), d.get("recipe"), d.get("final_loss"),
                       cls.from_dict(previous) if previous else None)
        except (AttributeError, TypeError, ValueError) as exc:
            raise AdaptationError(f"not an adaptation record ({exc})") from None

    def summary(self) -> dict[str, Any]:
        """:meth:`to_dict` less the per-layer statistics: what a timeline says it was adapted on."""
        return {k: v for k, v in self.to_dict().items() if k != "layers"}


def _optional_float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class AdaptationSet:
    """Usable speech for adaptation.

    Attributes
    ----------
    specs : tuple of np.ndarray, each (n_mels, n_frames_i)
        Log-mels of the trimmed speech of each usable file (real frames only).
    paths : tuple of str
        The usable files, in input order.
    skipped : tuple of str
        One line per input that was not used (unreadable, no speech, too short).
    seconds : float
        Seconds of speech in ``specs``.
    """

    specs: tuple[np.ndarray, ...]
    paths: tuple[str, ...]
    skipped: tuple[str, ...]
    seconds: float

    @property
    def digest(self) -> str:
        """SHA-256 of the usable files' paths, one per line: which list a model was adapted on."""
        return hashlib.sha256("\n".join(self.paths).encode()).hexdigest()

    def weight(self, prior_seconds: float = PRIOR_SECONDS) -> float:
        """The target's share of each statistic: ``seconds / (seconds + prior_seconds)`` (1 when the prior is 0)."""
        if prior_seconds < 0:
            raise AdaptationError(f"prior_seconds={prior_seconds!r} must be 0 or more")
        return 1.0 if prior_seconds == 0 else self.seconds / (self.seconds + prior_seconds)

    def record(self, weight: float, layers: list[list[dict[str, Any]]], *, base: str,
               previous: AdaptationRecord | None = None,
               method: str = "normalisation statistics (input standardisation and batch norm, every member)",
               ) -> AdaptationRecord:
        """What a model adapted on this set says about it (``adaptation.json`` and the model card); refused with
        :class:`~voxemo.core.errors.AdaptationError` when a layer's statistics moved by a non-finite amount."""
        broken = [s["layer"] for member in layers for s in member
                  if not (np.isfinite(s["mean_shift"]) and np.isfinite(s["std_ratio"]))]
        if broken:
            raise AdaptationError(f"adaptation computed non-finite statistics ({broken[0]}) from {len(self.paths)} "
                                  "clip(s): nothing saved")
        return AdaptationRecord(method, base, len(self.paths), len(self.skipped), self.digest, _now(),
                                speech_seconds=round(self.seconds, 2), weight=round(weight, 4), layers=layers,
                                previous=previous)


def adaptation_set(paths: Sequence[str], specs: Sequence[np.ndarray], config: Config, *,
                   skipped: Sequence[str] = (), min_seconds: float | None = None) -> AdaptationSet:
    """An :class:`AdaptationSet` from log-mels computed elsewhere (a prediction run's, an experiment's);
    refused with :class:`~voxemo.core.errors.AdaptationError` below ``min_seconds`` of speech."""
    floor = MIN_SECONDS if min_seconds is None else float(min_seconds)
    frames = sum(int(s.shape[1]) for s in specs)
    seconds = frames * config.features.hop_length / config.audio.sample_rate
    if not specs:
        example = f" (e.g. {skipped[0]})" if skipped else ""
        raise AdaptationError(f"no usable speech to adapt on: {len(skipped)} input(s), all skipped{example}")
    if seconds < floor:
        raise AdaptationError(f"too little speech to adapt on: {seconds:.1f} s in {len(specs)} file(s) "
                              f"({len(skipped)} skipped), need at least {floor:g} s")
    return AdaptationSet(tuple(specs), tuple(paths), tuple(skipped), seconds)


def collect_adaptation_set(inputs: Iterable[str | os.PathLike[str]], config: Config, *,
                           speech: SpeechConfig | None = None, jobs: int = 1, progress: bool = False,
                           min_seconds: float | None = None, warn: bool = True) -> AdaptationSet:
    """The usable speech among ``inputs`` (files, folders, manifests), in ``jobs`` processes (0 = all cores); with
    ``warn``, a warning for each input left out.

    Raises
    ------
    AdaptationError
        No inputs, none usable, or less than ``min_seconds`` (default :data:`MIN_SECONDS`) of speech.
    """
    files, skipped = [], []
    for path, error in expand_inputs(inputs):
        if error:
            skipped.append(error)
        else:
            files.append(path)
    if not files and not skipped:
        raise AdaptationError("nothing to adapt on: no input files given")
    used, specs, unused = _read(files, config, speech, jobs, progress, "adaptation set")
    skipped += unused
    for line in skipped if warn else ():
        log.warning("not adapting on %s", line)
    return adaptation_set([files[i] for i in used], specs, config, skipped=skipped, min_seconds=min_seconds)


def _read(paths: Sequence[str], config: Config, speech: SpeechConfig | None, jobs: int, progress: bool,
          desc: str) -> tuple[list[int], list[np.ndarray], list[str]]:
    """:func:`analyse_file` over ``paths`` in ``jobs`` processes: the indices of the files with speech, their
    log-mels, and one line per other file."""
    results = pmap(analyse_job, [(p, config, speech or SpeechConfig()) for p in paths], jobs=jobs, desc=desc,
                   progress=progress)
    used = [i for i, res in enumerate(results) if isinstance(res, np.ndarray)]
    specs = [res for res in results if isinstance(res, np.ndarray)]
    return used, specs, [why_unused(res) for res in results if not isinstance(res, np.ndarray)]


@dataclass(frozen=True)
class LabelledSet:
    """Labelled clips of the target domain for few-shot fine-tuning
    (:meth:`~voxemo.inference.classifier.Classifier.fine_tune`).

    Attributes
    ----------
    specs : tuple of np.ndarray
        Log-mels of the usable clips.
    labels : tuple of int
        Each clip's column in the model's classes (:func:`voxemo.core.labels.class_index`).
    paths : tuple of str
    skipped : tuple of str
        One line per clip not used (unreadable, no speech, or an emotion the model does not have).
    """

    specs: tuple[np.ndarray, ...]
    labels: tuple[int, ...]
    paths: tuple[str, ...]
    skipped: tuple[str, ...]

    def record(self, recipe: Any, classes: Sequence[str], final_losses: Sequence[float], *, base: str,
               previous: AdaptationRecord | None = None) -> AdaptationRecord:
        """What a model fine-tuned on this set says about it (``adaptation.json`` and the model card)."""
        per_class = {c: self.labels.count(i) for i, c in enumerate(classes) if i in self.labels}
        return AdaptationRecord("few-shot fine-tuning on labelled clips", base, len(self.paths), len(self.skipped),
                                hashlib.sha256("\n".join(self.paths).encode()).hexdigest(), _now(),
                                per_class=per_class, recipe=recipe.to_dict(),
                                final_loss=[round(float(x), 4) for x in final_losses], previous=previous)


def collect_labelled_set(clips: Iterable[tuple[str, str]], config: Config, classes: Sequence[str], *,
                         speech: SpeechConfig | None = None, jobs: int = 1, progress: bool = False) -> LabelledSet:
    """The usable clips among ``(path, emotion)`` pairs, each emotion mapped to a column of ``classes``.

    Raises
    ------
    AdaptationError
        No clip is usable (unreadable, no speech, or none of the model's emotions).
    """
    pairs = list(clips)
    if not pairs:
        raise AdaptationError("nothing to fine-tune on: no labelled clips given")
    skipped, keep = [], []
    for path, emotion in pairs:
        column = class_index(emotion, classes)
        if column is None:
            skipped.append(f"{path}: emotion {emotion!r} is not one of the model's ({', '.join(classes)})")
        else:
            keep.append((path, column))
    used, specs, unused = _read([p for p, _ in keep], config, speech, jobs, progress, "labelled clips")
    skipped += unused
    labels, paths = [keep[i][1] for i in used], [keep[i][0] for i in used]
    for line in skipped:
        log.warning("not fine-tuning on %s", line)
    if not specs:
        raise AdaptationError(f"no usable labelled clip: {len(pairs)} given, all skipped (e.g. {skipped[0]})")
    return LabelledSet(tuple(specs), tuple(labels), tuple(paths), tuple(skipped))
