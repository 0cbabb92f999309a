"""The typed results' ``to_dict()``: exactly the JSON layout the report folders have always had (same keys, same
order, same nesting), and picklable fold jobs and results for the process pools."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from conftest import voxemo_records
from voxemo.core.config import Config
from voxemo.core.labels import EMOTIONS
from voxemo.core.records import Utterance
from voxemo.experiment.crosscorpus import score_cross_corpus
from voxemo.experiment.evaluate import evaluate
from voxemo.experiment.metrics import breakdown, scores, top_confusions
from voxemo.experiment.results import (
    CrossCorpusResult,
    Evaluation,
    FoldJob,
    FoldResult,
    StudySummary,
    VariantComparison,
    VariantResult,
)
from voxemo.reports.crosscorpus import write_cross_corpus
from voxemo.reports.evaluation import write_evaluation

# the layouts written before the results were typed
EVALUATION_KEYS = ["protocol", "labels", "folds", "summary", "pooled", "confusion", "predictions", "calibration",
                   "config"]
CNN_FOLD_KEYS = ["fold", "n_train", "n_val", "n_test", "best_epoch", "epochs_run", "seconds", "accuracy", "uar",
                 "macro_f1", "history", "test_speakers"]
SVM_FOLD_KEYS = ["fold", "n_train", "n_val", "n_test", "C", "inner_uar", "seconds", "accuracy", "uar", "macro_f1",
                 "test_speakers"]
PREDICTION_KEYS = ["path", "speaker", "gender", "intensity", "emotion", "predicted", "fold", "confidence",
                   "confidence_calibrated"]
METRICS_EXTRA = ["confusion_labels", "per_class", "per_intensity", "per_gender", "per_speaker", "top_confusions"]
CROSS_KEYS = ["protocol", "train", "test", "model_labels", "epochs", "seconds", "shared_classes", "excluded",
              "labels", "n", "accuracy", "uar", "macro_f1", "confusion", "per_class", "predictions", "four_class",
              "config", "skipped"]
SUBSET_KEYS = ["labels", "n", "accuracy", "uar", "macro_f1", "confusion", "per_class"]
VARIANT_KEYS = ["bias_init", "first_epoch_val_loss", "first_epoch_val_accuracy", "best_epoch", "best_val_loss",
                "best_val_accuracy", "history"]
SUMMARY_KEYS = ["n_clips", "n_speakers", "skipped", "recommended", "variants", "chosen_variant", "final_epochs",
                "calibration", "evaluation", "timings_s", "config"]


def fake_fit(job: FoldJob) -> FoldResult:
    """A fold without training: right on even test clips, one class off on odd ones."""
    y = np.asarray(job.test_y)
    pred = np.where(np.arange(len(y)) % 2 == 0, y, (y + 1) % job.n_classes)
    probs = np.full((len(y), job.n_classes), 0.1 / (job.n_classes - 1))
    probs[np.arange(len(y)), pred] = 0.9
    s = scores(y, pred, job.n_classes)
    history = ({"loss": 1.0, "val_loss": 0.9}, {"loss": 0.8, "val_loss": 0.7})
    return FoldResult(job.name, len(job.train_x), len(job.val_x), len(job.test_x), seconds=0.5, best_epoch=2,
                      epochs_run=2, history=history, probs=probs, **s)


@pytest.fixture(scope="module")
def evaluation() -> Evaluation:
    recs = voxemo_records(12, clips_per_speaker=8)
    specs = [np.zeros((4, 4), np.float32)] * len(recs)
    return evaluate(recs, specs, Config(), "actor-6fold", jobs=1, progress=False, fit=fake_fit)


def test_evaluation_to_dict_has_the_old_layout(evaluation: Evaluation, tmp_path: Path) -> None:
    d = evaluation.to_dict()
    assert list(d) == EVALUATION_KEYS
    assert json.loads(json.dumps(d)) == d  # plain JSON types only
    assert [list(f) for f in d["folds"]] == [CNN_FOLD_KEYS] * 6
    assert d["folds"][0]["history"] == [{"loss": 1.0, "val_loss": 0.9}, {"loss": 0.8, "val_loss": 0.7}]
    assert all(list(p) == PREDICTION_KEYS for p in d["predictions"])
    assert list(d["summary"]) == ["accuracy", "uar", "macro_f1"] and list(d["pooled"]) == ["accuracy", "uar",
                                                                                           "macro_f1"]
    for m in ("accuracy", "uar", "macro_f1"):  # mean and std over folds, as before
        values = [f[m] for f in d["folds"]]
        assert d["summary"][m] == {"mean": float(np.mean(values)), "std": float(np.std(values))}
    assert d["labels"] == list(EMOTIONS) and d["config"] == Config().to_dict()
    assert np.asarray(d["confusion"]).sum() == len(d["predictions"]) == 96
    assert all(isinstance(v, int) for row in d["confusion"] for v in row)
    # metrics.json: everything but the predictions, then the breakdown tables computed from them
    metrics = json.loads((write_evaluation(evaluation, tmp_path) / "metrics.json").read_text())
    assert list(metrics) == [k for k in EVALUATION_KEYS if k != "predictions"] + METRICS_EXTRA
    assert metrics["per_speaker"] == breakdown(d["predictions"], "speaker")
    assert metrics["top_confusions"] == top_confusions(d["confusion"], d["labels"])
    header = (tmp_path / "predictions.csv").read_text().splitlines()[0]
    assert header == ",".join(PREDICTION_KEYS)


def test_baseline_fields_and_fold_layout(evaluation: Evaluation) -> None:
    from dataclasses import replace

    from voxemo.experiment.baseline import C_GRID
    from voxemo.experiment.results import BaselineInfo

    fold = FoldResult("actors 1-4", 10, 0, 4, 0.1, 0.5, 0.5, 0.4, C=1.0, inner_uar=0.6, test_speakers=("01",))
    assert list(fold.to_dict()) == SVM_FOLD_KEYS
    svm = replace(evaluation, model="egemaps-svm", skipped=(), baseline=BaselineInfo("f", "c", C_GRID, "s"))
    d = svm.to_dict()
    assert list(d) == [*EVALUATION_KEYS, "model", "skipped", "baseline"]
    assert d["skipped"] == [] and d["baseline"] == {"features": "f", "classifier": "c", "C_grid": list(C_GRID),
                                                    "C_selection": "s"}


def test_fold_jobs_and_results_pickle() -> None:
    job = FoldJob("f", [np.ones((2, 2))], np.array([0]), [], np.array([], int), [np.ones((2, 2))], np.array([1]), 2,
                  Config())
    back = pickle.loads(pickle.dumps(job))
    assert back.name == "f" and back.train_aug is None and back.config == job.config
    result = fake_fit(job)
    again = pickle.loads(pickle.dumps(result))
    assert again.to_dict() == result.to_dict() and np.array_equal(again.probs, result.probs)
    assert "probs" not in result.to_dict() and "window_probs" not in result.to_dict()


def test_cross_corpus_to_dict_has_the_old_layout(tmp_path: Path) -> None:
    test = [Utterance(f"{e}{i}.wav", "emodb", f"0{i}", e, gender="male", intensity=None)
            for e in ("neutral", "happy", "sad", "angry", "boredom") for i in (1, 2)]
    labels = list(EMOTIONS)
    probs = np.eye(len(labels))[[labels.index(r.emotion) if r.emotion in labels else 0 for r in test]]
    scored = score_cross_corpus(test, probs, labels, labels)
    result = CrossCorpusResult(train={"ravdess": 30}, test={"emodb": 10}, model_labels=tuple(labels), epochs=2,
                               seconds=1.5, scores=scored, config=Config(), skipped=())
    d = result.to_dict()
    assert list(d) == CROSS_KEYS and json.loads(json.dumps(d)) == d
    assert list(d["four_class"]) == SUBSET_KEYS and d["excluded"] == {"boredom": 2}
    assert list(d["predictions"][0]) == ["path", "corpus", "speaker", "gender", "intensity", "emotion", "predicted",
                                         "confidence"]
    assert d["per_class"][0] == {"emotion": "neutral", "n": 2, "recall": 1.0}
    out = write_cross_corpus(result, tmp_path)
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics) == [k for k in CROSS_KEYS if k != "predictions"] + ["confusion_labels", "per_gender",
                                                                             "per_speaker", "top_confusions"]


def test_variants_and_study_summary_have_the_old_layout(evaluation: Evaluation) -> None:
    history = ({"loss": 1.0, "val_loss": 0.9, "val_accuracy": 0.3},)
    v = {name: VariantResult(name == "bias_init", 0.9, 0.3, 1, 0.9, 0.3, history)
         for name in ("bias_init", "no_bias_init")}
    cal = {"temperature": 1.2, "n": 8, "before": {}, "after": {}, "fitted_on": "validation speakers 01, 02"}
    comparison = VariantComparison(("01", "02"), v, "bias_init", True, cal)
    d = comparison.to_dict()
    assert list(d) == ["val_speakers", "variants", "chosen", "bias_init", "calibration"]
    assert list(d["variants"]["bias_init"]) == VARIANT_KEYS and d["val_speakers"] == ["01", "02"]
    assert json.loads(json.dumps(d)) == d
    from dataclasses import replace

    moved = replace(comparison, calibration={"temperature": 2.0}, calibration_validation=cal).to_dict()
    assert list(moved) == [*d, "calibration_validation"] and moved["calibration_validation"] == cal
    summary = StudySummary(n_clips=96, n_speakers=12, skipped=("x.wav: bad",), recommended=None,
                           variants=comparison, final_epochs=1, evaluations={"actor-6fold": evaluation},
                           timings_s={"features": 1.0, "total": 2.0}, config=Config())
    s = summary.to_dict()
    assert list(s) == SUMMARY_KEYS and json.loads(json.dumps(s)) == s
    assert list(s["variants"]["bias_init"]) == VARIANT_KEYS[:-1]  # no history in summary.json
    assert s["evaluation"] == {"actor-6fold": {"summary": evaluation.to_dict()["summary"],
                                               "pooled": evaluation.to_dict()["pooled"]}}
    assert s["chosen_variant"] == "bias_init" and s["calibration"] == cal and s["skipped"] == ["x.wav: bad"]
