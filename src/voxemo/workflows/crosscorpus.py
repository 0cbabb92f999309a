"""Cross-corpus evaluation from records to report folder: features, training, scoring, report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from voxemo.core.config import Config
from voxemo.core.records import Utterance
from voxemo.experiment.crosscorpus import cross_corpus, score_trained
from voxemo.experiment.dataset import load_augmented, load_features
from voxemo.experiment.probe import cross_corpus_probe, encoder_features, telephone_copies
from voxemo.experiment.results import CrossCorpusResult
from voxemo.inference.loading import load_model
from voxemo.inference.probe_backend import ProbeClassifier
from voxemo.nn.probe import FAMILIES
from voxemo.reports.crosscorpus import write_cross_corpus


def run_cross_corpus(train_records: Sequence[Utterance], test_records: Sequence[Utterance], config: Config,
                     out_dir: str | Path, *, fold: Mapping[str, str] | None = None, cache_dir: str | None = None,
                     adapt: bool = False, shots: Sequence[int] = (), draws: int = 5, channel: str = "wideband",
                     jobs: int = 0, threads: int = 1, progress: bool = True) -> CrossCorpusResult:
    """Extract features (and the training clips' augmented copies), run :func:`cross_corpus` and write its
    report under ``out_dir`` (:func:`write_cross_corpus`). Clips whose audio fails are skipped and listed in
    ``skipped``. ``adapt``, ``shots`` and ``draws`` add the unsupervised adaptation and the few-shot curve
    (:func:`cross_corpus`); ``channel`` (``"telephone"``) passes the test clips through a simulated channel."""

    if config.model.arch in FAMILIES:
        return _run_cross_corpus_probe(train_records, test_records, config, out_dir, cache_dir=cache_dir,
                                       adapt=adapt, shots=shots, draws=draws, channel=channel, jobs=jobs,
                                       progress=progress)
    train_records, train_specs, train_errors = load_features(train_records, config, cache_dir=cache_dir, jobs=jobs,
                                                             progress=progress)
    test_records, test_specs, test_errors = load_features(test_records, config, cache_dir=cache_dir, jobs=jobs,
                                                          progress=progress, channel=channel)
    aug = load_augmented(train_records, config, cache_dir=cache_dir, jobs=jobs, progress=progress)
    result = cross_corpus(train_records, train_specs, test_records, test_specs, config, aug_specs=aug, fold=fold,
                          adapt=adapt, shots=shots, draws=draws, threads=threads, progress=progress)
    result = replace(result, skipped=tuple(train_errors + test_errors))
    write_cross_corpus(result, out_dir)
    return result


def _run_cross_corpus_probe(train_records: Sequence[Utterance], test_records: Sequence[Utterance],
                            config: Config, out_dir: str | Path, *, cache_dir: str | None, adapt: bool,
                            shots: Sequence[int], draws: int, channel: str, jobs: int,
                            progress: bool) -> CrossCorpusResult:
    """:func:`run_cross_corpus` for an encoder family (:func:`voxemo.experiment.probe.cross_corpus_probe`)."""

    train_records, train_feats, train_errors = encoder_features(train_records, config, cache_dir=cache_dir,
                                                                jobs=jobs, progress=progress)
    test_records, test_feats, test_errors = encoder_features(test_records, config, cache_dir=cache_dir, jobs=jobs,
                                                             progress=progress, channel=channel)
    copies = telephone_copies(train_records, config, cache_dir=cache_dir, jobs=jobs, progress=progress)
    result = cross_corpus_probe(train_records, train_feats, test_records, test_feats, config=config,
                                adapt="corpus" if adapt else "", shots=shots, draws=draws, train_copies=copies)
    result = replace(result, skipped=tuple(train_errors + test_errors))
    write_cross_corpus(result, out_dir)
    return result


def run_trained(model: str | None, test_records: Sequence[Utterance], out_dir: str | Path, *,
                fold: Mapping[str, str] | None = None, cache_dir: str | None = None, adapt: bool = False,
                shots: Sequence[int] = (), draws: int = 5, channel: str = "wideband", jobs: int = 0, seed: int = 0,
                progress: bool = True) -> CrossCorpusResult:
    """Score a trained model (a folder, or a shipped model's name; None: the default model) on labelled corpora
    without training anything (:func:`~voxemo.experiment.crosscorpus.score_trained`) and write the same report as a
    cross-corpus run under ``out_dir``. The test clips' features follow the model's own config."""

    clf = load_model(model)
    if not isinstance(clf, ProbeClassifier):  # a CNN: torch, which adaptation and fine-tuning need
        clf = load_model(model, backend="torch")
    records, specs, errors = load_features(test_records, clf.config, cache_dir=cache_dir, jobs=jobs,
                                           progress=progress, channel=channel)
    result = score_trained(clf, records, specs, fold=fold, adapt=adapt, shots=shots, draws=draws, seed=seed)
    result = replace(result, skipped=tuple(errors))
    write_cross_corpus(result, out_dir)
    return result
