"""What a batch worker does, whichever engine runs it: build the classifier once from :class:`WorkerSettings`, then
turn chunks of inputs into typed results. The local process pool (:mod:`voxemo.inference.batch`) and the Ray actors
(:mod:`voxemo.inference.distributed`) both call these functions, so a per-file option added to the settings reaches
every engine unchanged.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from voxemo.core.errors import ModelError
from voxemo.inference.classifier import Classifier
from voxemo.inference.loading import ModelRef, load_model
from voxemo.inference.results import FileFailure, FileResult

if TYPE_CHECKING:
    from voxemo.inference.classifier import Classifier

#: one input of a batch: a path, and the reason it cannot be used (None: predict it); what
#: :func:`voxemo.io.discovery.expand_inputs` yields
Item = tuple[str, str | None]


@dataclass(frozen=True)
class WorkerSettings:
    """Everything a worker needs to build its classifier (picklable: it travels to worker processes and Ray actors).

    Attributes
    ----------
    model : str or None
        Model folder or ``.onnx`` file (None: the shipped model), as for :func:`voxemo.inference.loading.load_model`.
    backend : str
        ``"auto"``, ``"onnx"`` or ``"torch"``.
    min_confidence : float
        Speech whose top probability is below this is reported as uncertain.
    """

    model: str | None = None
    backend: str = "auto"
    min_confidence: float = 0.0

    def load(self) -> Classifier:
        """The classifier these settings describe, configured for :func:`predict_items`."""
        clf = load_model(self.model, backend=self.backend)
        clf.min_confidence = self.min_confidence
        return clf


def predict_items(clf: Classifier, items: Sequence[Item]) -> list[FileResult]:
    """One result per item, in order; never raises for a single bad file."""
    return [result_of(clf, path, error) for path, error in items]


def result_of(clf: Classifier, path: str, error: str | None) -> FileResult:
    return FileFailure(path, error) if error else safe_predict(clf, path)


def safe_predict(clf: Classifier, path: str) -> FileResult:
    """``clf.predict_result`` that turns even an unexpected failure into an error line: one odd file must not end
    a run over 100,000."""
    try:
        return clf.predict_result(path)
    except Exception as exc:  # noqa: BLE001 - reported per file, with its type, instead of ending the batch
        cause = f" ({str(exc).splitlines()[0]})" if str(exc).strip() else ""
        return FileFailure(path, f"{path}: unexpected {type(exc).__name__}{cause}")


@contextmanager
def worker_reference(model: ModelRef) -> Iterator[str | None]:
    """What worker processes and Ray actors load to get ``model``'s classifier: ``model`` itself when it is a
    reference, the folder a classifier was loaded from, or a copy saved for the run (deleted after it) when the
    classifier lives in memory only (adapted or fine-tuned and not saved)."""
    if not isinstance(model, Classifier):
        yield None if model is None else str(model)
    elif model.model_dir is not None:
        yield str(model.model_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="voxemo-model-") as tmp:
            try:
                model.save(Path(tmp) / "model", onnx=True)
            except NotImplementedError:
                raise ModelError("this in-memory model cannot be saved for worker processes: save it first, or "
                                 "predict with jobs=1") from None
            yield str(Path(tmp) / "model")
