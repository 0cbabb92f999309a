"""The encoder families (Whisper, voice) in experiments: encoder features of a corpus (cached), a head fitted on
several corpora, and its evaluation under voxemo's protocols (the same splits, metrics and reports as the CNN's).
The family is the config's ``model.arch`` (:data:`voxemo.nn.probe.FAMILIES`): its encoder and its head's strength.

Features: each clip's log-mel (the one preprocessing path, :func:`voxemo.experiment.dataset.load_features`), cut
into the windows prediction cuts (:func:`voxemo.dsp.scoring.clip_windows`), run through the shared encoder file
(:mod:`voxemo.inference.encoders`) and cached per clip, keyed by the audio's digest, the analysis and the encoder's
SHA-256. Training fits :func:`voxemo.nn.probe.fit_head`; a clip's probabilities are the mean of its windows'.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np

from voxemo.core.config import Config
from voxemo.core.errors import ConfigError, CorpusError
from voxemo.core.labels import class_index, shared_classes
from voxemo.core.records import Utterance
from voxemo.dsp.features import config_digest
from voxemo.dsp.scoring import clip_windows
from voxemo.experiment.calibration import fit_temperature
from voxemo.experiment.crossscore import score_cross_corpus
from voxemo.experiment.dataset import load_features
from voxemo.experiment.fewshot import draw_shots
from voxemo.experiment.metrics import scores
from voxemo.experiment.multicorpus import corpora, model_labels
from voxemo.experiment.results import CrossCorpusResult, Evaluation, FoldJob, FoldResult, ShotScores
from voxemo.inference.encoders import ENCODERS, encode_clips, encoder_session
from voxemo.io.cache import cache_root
from voxemo.io.files import atomic_path, file_digest
from voxemo.nn.probe import HEAD_NORM, ProbeHead, family, fit_head


def whisper_config(**model: object) -> Config:
    """A config with the Whisper family's analysis (:data:`voxemo.nn.probe.WHISPER_ANALYSIS`)."""
    return family("whisper").config(**model)


@dataclass(frozen=True)
class EncoderFile:
    """The encoder file features come from: a shipped encoder, or another build (experiments)."""

    path: str
    sha256: str

    @classmethod
    def shipped(cls, name: str) -> EncoderFile:
        return cls(str(ENCODERS[name].path()), ENCODERS[name].sha256)

    @classmethod
    def of(cls, config: Config) -> EncoderFile:
        """The shipped encoder of ``config``'s family."""
        return cls.shipped(family(config.model.arch).encoder)


@dataclass(frozen=True, eq=False)
class ProbeClip:
    """One clip's encoder features, (n_windows, n_features), with its speaker and corpus."""

    features: np.ndarray
    speaker: str
    corpus: str


def encoder_features(records: Sequence[Utterance], config: Config, encoder: EncoderFile | None = None, *,
                     cache_dir: str | None = None, jobs: int = 0, threads: int = 1, progress: bool = True,
                     channel: str = "wideband") -> tuple[list[Utterance], list[np.ndarray], list[str]]:
    """Encoder features of every record: (records kept, one (n_windows, n_features) array each, errors). A
    ``channel`` other than ``"wideband"`` passes the audio through that simulated line first
    (:func:`voxemo.dsp.channel.simulate`)."""

    enc = encoder or EncoderFile.of(config)
    kept, specs, errors = load_features(records, config, cache_dir=cache_dir, jobs=jobs, progress=progress,
                                        channel=channel)
    root = cache_root(cache_dir)
    # "w1": features of each window encoded on its own (voxemo.inference.encoders.encode)
    name = (f"encoder-w1-{enc.sha256[:16]}-{config_digest(config.audio, config.features)}"
            f"-{config.audio.duration:g}-{int(config.audio.pad_short)}"
            + ("" if channel == "wideband" else f"-{channel}"))
    folder = Path(root) / name if root else None
    out: list[np.ndarray | None] = [None] * len(kept)
    entries: list[Path | None] = [None] * len(kept)
    if folder is not None:
        for i, r in enumerate(kept):
            digest = file_digest(r.path)
            entry = entries[i] = folder / digest[:2] / f"{digest}.npy"
            try:
                out[i] = np.load(entry, allow_pickle=False)
            except (OSError, ValueError, EOFError):
                pass
    todo = [i for i, f in enumerate(out) if f is None]
    if todo:
        from tqdm import tqdm

        session = encoder_session(enc.path, enc.sha256, threads)
        step = 64
        with tqdm(total=len(todo), desc="encoder", unit="clip", disable=not progress, leave=False) as bar:
            for s in range(0, len(todo), step):
                part = todo[s : s + step]
                feats = encode_clips(session, clip_windows([specs[i] for i in part], config))
                for i, f in zip(part, feats):
                    out[i] = f
                    target = entries[i]
                    if target is not None:
                        target.parent.mkdir(parents=True, exist_ok=True)
                        with atomic_path(target, ".tmp.npy") as tmp:
                            np.save(tmp, f, allow_pickle=False)
                bar.update(len(part))
    return kept, [f for f in out if f is not None], errors


def telephone_copies(records: Sequence[Utterance], config: Config, encoder: EncoderFile | None = None, *,
                     cache_dir: str | None = None, jobs: int = 0, threads: int = 1,
                     progress: bool = True) -> list[list[np.ndarray]] | None:
    """The training copies of ``records`` that ``config.augment.telephone`` asks for: the family has no random
    copies, so any share above 0 gives every clip one copy through the simulated telephone line
    (:func:`voxemo.dsp.channel.telephone`), as its encoder features; a clip that fails through the line has none.
    None when the share is 0."""
    if not config.augment.telephone:
        return None
    kept, feats, _ = encoder_features(records, config, encoder, cache_dir=cache_dir, jobs=jobs, threads=threads,
                                      progress=progress, channel="telephone")
    by_path = {r.path: f for r, f in zip(kept, feats)}
    return [[by_path[r.path]] if r.path in by_path else [] for r in records]


def with_copies(clips: Sequence[ProbeClip], y: np.ndarray,
                copies: Sequence[Sequence[np.ndarray]] | None) -> tuple[list[ProbeClip], np.ndarray]:
    """``clips`` and their labels followed by each clip's ``copies`` (same label, speaker and corpus)."""
    if not copies:
        return list(clips), np.asarray(y)
    extra = [(ProbeClip(f, c.speaker, c.corpus), label) for c, label, fs in zip(clips, y, copies) for f in fs]
    return list(clips) + [c for c, _ in extra], np.concatenate([np.asarray(y), [label for _, label in extra]]
                                                                ).astype(np.asarray(y).dtype)


def stack_windows(clips: Sequence[ProbeClip], y: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str], list[str],
                                                                      np.ndarray]:
    """Every window of ``clips`` with its label, corpus, speaker and clip index."""
    feats = np.concatenate([c.features for c in clips])
    counts = [len(c.features) for c in clips]
    rep = lambda values: [v for v, n in zip(values, counts) for _ in range(n)]  # noqa: E731
    return (feats, np.repeat(np.asarray(y), counts), rep([c.corpus for c in clips]),
            rep([c.speaker for c in clips]), np.repeat(np.arange(len(clips)), counts))


def fit_probe(clips: Sequence[ProbeClip], y: np.ndarray, n_classes: int, *, c: float, norm: str = HEAD_NORM
              ) -> ProbeHead:
    """A head fitted on labelled clips (:func:`voxemo.nn.probe.fit_head` over their windows); ``c``: the family's
    inverse L2 strength (:attr:`voxemo.nn.probe.Family.c`)."""
    feats, labels, corpus, speaker, clip = stack_windows(clips, y)
    return fit_head(feats, labels, n_classes, corpus=corpus, speaker=speaker, clip=clip, norm=norm, c=c)


def clip_proba(head: ProbeHead, clips: Sequence[ProbeClip] | Sequence[np.ndarray], temperature: float = 1.0
               ) -> np.ndarray:
    """Clip probabilities: each window's softmax (logits / ``temperature``), averaged per clip."""
    feats = [c.features if isinstance(c, ProbeClip) else c for c in clips]
    if not feats:
        return np.zeros((0, head.n_classes), np.float32)
    logits = head.logits(np.concatenate(feats)) / temperature
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    bounds = np.cumsum([0] + [len(f) for f in feats])
    return np.stack([p[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:])]).astype(np.float32)


def fit_probe_and_test(job: FoldJob, adapt: str = "", *, c: float) -> FoldResult:
    """:func:`voxemo.experiment.evaluate.fit_and_test` for the family: :class:`ProbeClip` items (validation clips
    join the training clips: a linear head has nothing to stop early). ``adapt="fold"`` first moves the head's
    moments to the test fold's windows (no labels), ``"speaker"`` to each test speaker's own windows."""

    start = time.perf_counter()
    clips = list(job.train_x) + list(job.val_x)
    y = np.concatenate([np.asarray(job.train_y), np.asarray(job.val_y, dtype=np.asarray(job.train_y).dtype)])
    if job.train_aug:  # telephone copies of the training clips (the validation clips have none)
        clips, y = with_copies(clips, y, [*(list(a) for a in job.train_aug), *([] for _ in job.val_x)])
    head = fit_probe(clips, y, job.n_classes, c=c)
    test: list[ProbeClip] = list(job.test_x)
    probs = np.zeros((len(test), job.n_classes), np.float32)
    for group in _adaptation_groups(test, adapt):
        h = head.adapted(np.concatenate([test[i].features for i in group]), 1.0) if adapt else head
        probs[group] = clip_proba(h, [test[i] for i in group])
    s = scores(np.asarray(job.test_y), probs.argmax(1), job.n_classes)
    return FoldResult(job.name, len(clips), 0, len(test), C=c, seconds=time.perf_counter() - start,
                      accuracy=s["accuracy"], uar=s["uar"], macro_f1=s["macro_f1"], probs=probs,
                      window_probs=tuple(p[None] for p in probs))


def _adaptation_groups(test: Sequence[ProbeClip], adapt: str) -> list[list[int]]:
    if adapt == "speaker":
        speakers = sorted({c.speaker for c in test})
        return [[i for i, c in enumerate(test) if c.speaker == s] for s in speakers]
    return [list(range(len(test)))]


def evaluate_probe(records: Sequence[Utterance], config: Config, protocol: str = "actor-6fold", *,
                   adapt: str = "", encoder: EncoderFile | None = None, cache_dir: str | None = None,
                   jobs: int = 0, progress: bool = True, channel: str = "wideband") -> Evaluation:
    """Cross-validate the family under ``protocol`` as :func:`voxemo.experiment.evaluate.evaluate` does the CNN
    (same splits, metrics, calibration and result layout). ``adapt``: ``""`` (none), ``"fold"`` (each fold's
    head adapted to its test clips, no labels) or ``"speaker"`` (to each test speaker's own clips). ``channel``
    (``"telephone"``) passes the test clips through a simulated line; ``config.augment.telephone`` trains each fold
    on telephone copies too (:func:`telephone_copies`)."""
    from voxemo.experiment.evaluate import evaluate

    if adapt not in ("", "fold", "speaker"):
        raise ConfigError(f"adapt={adapt!r} is not one of fold, speaker")
    kept, feats, errors = encoder_features(records, config, encoder, cache_dir=cache_dir, jobs=jobs,
                                           progress=progress)
    tested = None
    if channel != "wideband":
        through, tfeats, _ = encoder_features(kept, config, encoder, cache_dir=cache_dir, jobs=jobs,
                                              progress=progress, channel=channel)
        if len(through) != len(kept):
            raise ConfigError(f"{len(kept) - len(through)} clips fail through the {channel} channel")
        tested = [ProbeClip(f, r.speaker, r.corpus) for r, f in zip(through, tfeats)]
    copies = telephone_copies(kept, config, encoder, cache_dir=cache_dir, jobs=jobs, progress=progress)
    clips = [ProbeClip(f, r.speaker, r.corpus) for r, f in zip(kept, feats)]
    result = evaluate(kept, clips, config, protocol, labels=model_labels(kept), jobs=jobs, progress=progress,
                      fit=partial(fit_probe_and_test, adapt=adapt, c=family(config.model.arch).c),
                      aug_specs=copies, test_specs=tested)
    return replace(result, model=config.model.arch, skipped=tuple(errors) or None)


def cross_corpus_probe(train_records: Sequence[Utterance], train_feats: Sequence[np.ndarray],
                       test_records: Sequence[Utterance], test_feats: Sequence[np.ndarray], *, config: Config,
                       adapt: bool | str = False, shots: Sequence[int] = (), draws: int = 5, seed: int = 0,
                       norm: str = HEAD_NORM, c: float | None = None,
                       train_copies: Sequence[Sequence[np.ndarray]] | None = None) -> CrossCorpusResult:
    """Train a head on the training corpora, score it on the test corpus over the shared classes, as
    :func:`voxemo.experiment.crosscorpus.cross_corpus` does the CNN: plain, adapted without labels to the test
    clips (``adapt="corpus"`` or True: the whole test corpus' moments; ``"speaker"``: each test speaker's), and
    the few-shot curve (``shots``, over ``draws`` speaker splits; from the corpus-adapted head with ``adapt``).
    ``train_copies``: more training features per training clip (:func:`telephone_copies`); ``c``: the head's
    inverse L2 strength (default: the family's)."""
    overlap = {r.path for r in train_records} & {r.path for r in test_records}
    if overlap:
        raise CorpusError(f"{len(overlap)} clips are in both the training and the test data, e.g. {min(overlap)}")
    labels = list(model_labels(train_records))
    train_emotions = [r.emotion for r in train_records]
    shared = shared_classes(train_emotions, [r.emotion for r in test_records])
    start = time.perf_counter()
    y = np.array([labels.index(e) for e in train_emotions])
    clips, y = with_copies([ProbeClip(f, r.speaker, r.corpus) for r, f in zip(train_records, train_feats)], y,
                           train_copies)
    head = fit_probe(clips, y, len(labels), norm=norm, c=family(config.model.arch).c if c is None else c)
    result = score_cross_corpus(test_records, clip_proba(head, test_feats), labels, train_emotions)
    adapted, adaptation, base = None, None, head
    mode = "corpus" if adapt is True else str(adapt or "")
    if mode not in ("", "corpus", "speaker"):
        raise ConfigError(f"adapt={adapt!r} is not one of corpus, speaker")
    if mode:
        base = head.adapted(np.concatenate(list(test_feats)), 1.0)
        probs = clip_proba(base, test_feats)
        if mode == "speaker":  # each test speaker's own moments (the few-shot curve starts from the corpus')
            tclips = [ProbeClip(f, r.speaker, r.corpus) for r, f in zip(test_records, test_feats)]
            for group in _adaptation_groups(tclips, "speaker"):
                h = head.adapted(np.concatenate([test_feats[i] for i in group]), 1.0)
                probs[group] = clip_proba(h, [test_feats[i] for i in group])
        adapted = score_cross_corpus(test_records, probs, labels, train_emotions)
        mean_shift, std_ratio = head.shift(base)
        adaptation = {"clips": len(test_records), "weight": 1.0, "per": mode, "mean_shift": mean_shift,
                      "std_ratio": std_ratio}
    curve = []
    for k in shots:
        uar, uar4 = [], []
        for d in range(draws):
            picked, test = draw_shots(test_records, shared, k, np.random.default_rng([seed, d]))
            h = base
            if k:
                pairs = [(test_feats[i], class_index(test_records[i].emotion, labels)) for i in picked]
                pairs = [(f, ci) for f, ci in pairs if ci is not None]
                h = base.tuned(np.concatenate([f for f, _ in pairs]),
                               np.concatenate([[ci] * len(f) for f, ci in pairs]))
            s = score_cross_corpus([test_records[i] for i in test], clip_proba(h, [test_feats[i] for i in test]),
                                   labels, train_emotions)
            uar.append(s.shared.uar)
            if s.four_class is not None:
                uar4.append(s.four_class.uar)
        curve.append(ShotScores(int(k), tuple(uar), tuple(uar4) if uar4 else None))
    count = lambda recs: {n: sum(r.corpus == n for r in recs) for n in corpora(recs)}  # noqa: E731
    return CrossCorpusResult(train=count(train_records), test=count(test_records), model_labels=tuple(labels),
                             epochs=0, seconds=time.perf_counter() - start, scores=result, config=config,
                             adapted=adapted, adaptation=adaptation, shots=tuple(curve), model=config.model.arch)


#: speaker folds of the out-of-fold predictions a trained head's temperature is fitted on
CALIBRATION_FOLDS = 5


@dataclass(frozen=True, eq=False)
class TrainedProbe:
    """A head trained on every clip, its temperature (fitted on speaker-held-out logits) and what it learned from."""

    head: ProbeHead
    labels: tuple[str, ...]
    temperature: float
    calibration: dict[str, object]
    records: tuple[Utterance, ...]
    errors: tuple[str, ...]


def train_probe(records: Sequence[Utterance], config: Config, *, encoder: EncoderFile | None = None,
                cache_dir: str | None = None, jobs: int = 0, threads: int = 1,
                progress: bool = True) -> TrainedProbe:
    """Fit the family's head on every usable clip of ``records`` (several corpora: see :func:`fit_head`).

    The softmax temperature is fitted on out-of-fold window logits: the speakers (of every corpus) are cut into
    :data:`CALIBRATION_FOLDS` groups, a head is fitted without each group and its clips' logits kept, so no clip's
    logit comes from a head that heard its speaker.
    """
    from sklearn.model_selection import GroupKFold


    kept, feats, errors = encoder_features(records, config, encoder, cache_dir=cache_dir, jobs=jobs,
                                           threads=threads, progress=progress)
    if not kept:
        raise CorpusError("no usable clips to train on" + (f" ({len(errors)} failed, e.g. {errors[0]})"
                                                           if errors else ""))
    labels = list(model_labels(kept))
    y = np.array([labels.index(r.emotion) for r in kept])
    clips = [ProbeClip(f, r.speaker, r.corpus) for r, f in zip(kept, feats)]
    copies = telephone_copies(kept, config, encoder, cache_dir=cache_dir, jobs=jobs, threads=threads,
                              progress=progress)
    c = family(config.model.arch).c
    groups = np.array([f"{r.corpus}/{r.speaker}" for r in kept])
    n_folds = min(CALIBRATION_FOLDS, len(set(groups.tolist())))
    temperature, calibration = 1.0, {}
    if n_folds >= 2:
        logits: list[np.ndarray] = [np.zeros(0)] * len(kept)
        for train, test in GroupKFold(n_splits=n_folds).split(np.zeros(len(kept)), y, groups):
            head = fit_probe(*with_copies([clips[i] for i in train], y[train],
                                          [copies[i] for i in train] if copies else None), len(labels), c=c)
            for i in test:
                logits[i] = head.logits(clips[i].features)
        temperature = fit_temperature(logits, y)
        calibration = {"method": f"out-of-fold window logits, {n_folds} speaker folds", "clips": len(kept)}
    head = fit_probe(*with_copies(clips, y, copies), len(labels), c=c)
    return TrainedProbe(head, tuple(labels), temperature, calibration, tuple(kept), tuple(errors))
