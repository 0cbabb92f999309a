"""An evaluation from records to report folder, as ``voxemo evaluate DATA --protocol P`` runs it: the CNN recipe,
a whisper-family head, or the eGeMAPS + SVM baseline, cross-validated under the protocol, and the report written."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from voxemo.core.config import Config
from voxemo.core.errors import ConfigError
from voxemo.core.extras import require
from voxemo.core.records import Utterance
from voxemo.experiment.baseline import evaluate_egemaps_svm
from voxemo.experiment.dataset import load_augmented, load_features
from voxemo.experiment.distributed import ray_fold_runner
from voxemo.experiment.evaluate import evaluate, fit_and_test, fit_and_test_adapted
from voxemo.experiment.multicorpus import model_labels
from voxemo.experiment.probe import evaluate_probe
from voxemo.experiment.results import Evaluation
from voxemo.nn.probe import FAMILIES
from voxemo.reports.evaluation import write_evaluation

#: the models ``voxemo evaluate --model`` can evaluate
MODELS = ("cnn", "whisper", "voice", "egemaps-svm")


def run_evaluation(records: Sequence[Utterance], config: Config, protocol: str, out: str | Path, *,
                   model: str = "cnn", adapt: bool = False, channel: str = "wideband", jobs: int = 0,
                   threads: int = 1, progress: bool = True, engine: str = "local",
                   address: str | None = None) -> Evaluation:
    """Cross-validate ``model`` on ``records`` under ``protocol`` and write the report folder ``out``
    (:func:`~voxemo.reports.evaluation.write_evaluation`); returns the evaluation. With ``adapt`` each fold's CNN
    is adapted without labels to its test clips' audio before predicting them
    (:func:`~voxemo.experiment.evaluate.fit_and_test_adapted`). ``channel`` (``"telephone"``) passes the test folds'
    audio through a simulated channel (:mod:`voxemo.dsp.channel`); training stays as recorded.

    ``engine="ray"`` trains the folds as Ray tasks (:func:`~voxemo.experiment.distributed.ray_fold_runner`) on the
    cluster at ``address`` (else ``$RAY_ADDRESS``, else a Ray runtime on this machine); the features are still
    computed here, once, and the metrics are the local run's for the same seed."""
    if model not in MODELS:
        raise ConfigError(f"model={model!r} is not one of {', '.join(MODELS)}")
    if channel != "wideband" and model == "egemaps-svm":
        raise ConfigError(f"--test-channel is measured for the CNN and the encoder families; model={model!r} is "
                          "not supported")
    if adapt and model == "egemaps-svm":
        raise ConfigError(f"--adapt adapts a model's normalisation statistics; model={model!r} has none")
    if model in FAMILIES and engine != "local":
        raise ConfigError(f"--engine ray trains CNN folds; a {model} model's folds are linear heads: leave out "
                          "--engine")
    if engine not in ("local", "ray"):
        raise ConfigError(f"engine={engine!r} is not one of local, ray")
    runner = None
    if engine == "ray":
        require("ray", "voxemo evaluate --engine ray")  # before any feature is computed
        runner = ray_fold_runner(address)
    if model in FAMILIES:

        result = evaluate_probe(records, config, protocol, adapt="fold" if adapt else "", jobs=jobs,
                                progress=progress, channel=channel)
    elif model == "egemaps-svm":

        result = evaluate_egemaps_svm(records, config, protocol, labels=model_labels(records), jobs=jobs,
                                      progress=progress, runner=runner)
    else:
        records, specs, _ = load_features(records, config, jobs=jobs, progress=progress)
        tested = None
        if channel != "wideband":
            records_t, tested, _ = load_features(records, config, jobs=jobs, progress=progress, channel=channel)
            if len(records_t) != len(records):
                raise ConfigError(f"{len(records) - len(records_t)} clips fail through the {channel} channel")
        aug = load_augmented(records, config, jobs=jobs, progress=progress)
        result = evaluate(records, specs, config, protocol, labels=model_labels(records), aug_specs=aug,
                          threads=threads, progress=progress, fit=fit_and_test_adapted if adapt else fit_and_test,
                          test_specs=tested, runner=runner)
    write_evaluation(result, out)
    return result
