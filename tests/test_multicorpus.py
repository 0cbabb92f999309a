"""Multi-corpus training (label union, unique speakers, validation from every corpus, balanced sampling) and
cross-corpus evaluation (calm folding, shared classes, metrics on hand-made probabilities, the CLI)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import voiced
from voxemo.apps.cli import main
from voxemo.core.config import AudioConfig, Config, ModelConfig, TrainConfig
from voxemo.core.errors import ConfigError, CorpusError
from voxemo.core.labels import EMOTIONS, TAXONOMY
from voxemo.core.records import Utterance
from voxemo.dsp.features import extract
from voxemo.experiment.crosscorpus import cross_corpus, fold_probabilities, score_cross_corpus, score_subset
from voxemo.experiment.multicorpus import corpus_weights, model_labels, unique_speakers, validation_speakers
from voxemo.nn.train import train_model
from voxemo.reports.crosscorpus import write_cross_corpus

FAST = ["--threads", "1", "--jobs", "1"]
TINY = Config(audio=AudioConfig(duration=1.0), model=ModelConfig(channels=(4,)),
              train=TrainConfig(epochs=2, batch_size=16, val_speakers=2))


def recs(corpus: str, speakers: list[str], emotions: tuple[str, ...], *, per: int = 1) -> list[Utterance]:
    return [Utterance(f"{corpus}/{s}_{e}_{k}.wav", corpus, s, e, gender="male" if i % 2 else "female")
            for i, s in enumerate(speakers) for e in emotions for k in range(per)]


# --- multi-corpus training ----------------------------------------------------------------------------------------

def test_model_labels_are_the_union_in_taxonomy_order():
    ravdess = recs("ravdess", ["01"], EMOTIONS)
    emodb = recs("emodb", ["03"], ("boredom", "angry", "neutral"))
    assert model_labels(ravdess) == EMOTIONS
    assert model_labels(emodb) == ("neutral", "angry", "boredom")
    assert model_labels(ravdess + emodb) == TAXONOMY
    with pytest.raises(CorpusError, match="no clips"):
        model_labels([])


def test_speakers_are_unique_across_corpora_and_validation_comes_from_each():
    ravdess = recs("ravdess", [f"{i:02d}" for i in range(1, 25)], ("sad",))
    emodb = recs("emodb", ["03", "08", "09", "10", "11", "12", "13", "14", "15", "16"], ("sad",))
    assert unique_speakers(ravdess) == ravdess  # one corpus: untouched
    both = unique_speakers(ravdess + emodb)
    assert {r.speaker for r in both if r.corpus == "emodb"} >= {"emodb:03"}
    assert "ravdess:03" in {r.speaker for r in both} and "03" not in {r.speaker for r in both}
    val = validation_speakers(both, 4, seed=0)
    assert sum(s.startswith("ravdess:") for s in val) == 3 and sum(s.startswith("emodb:") for s in val) == 1
    # one corpus: the same choice as single-corpus training always made
    from voxemo.experiment.splits import pick_validation_speakers

    assert validation_speakers(ravdess, 4, seed=3) == pick_validation_speakers(ravdess, [f"{i:02d}" for i in
                                                                                         range(1, 25)], 4, 3)
    # a single-speaker corpus keeps its speaker for training
    tess = unique_speakers(ravdess + recs("tess", ["OAF"], ("sad",)))
    assert not any(s.startswith("tess:") for s in validation_speakers(tess, 4, seed=0))


def test_corpus_weights_balance_the_corpora():
    big, small = recs("big", ["a", "b"], ("sad",), per=30), recs("small", ["c"], ("sad",), per=6)
    assert corpus_weights(big) is None
    w = corpus_weights(big + small)
    assert w.sum() == pytest.approx(1.0)
    assert w[: len(big)].sum() == pytest.approx(0.5) and w[len(big):].sum() == pytest.approx(0.5)


def test_weights_change_what_training_samples(monkeypatch: pytest.MonkeyPatch, rng: np.random.Generator):
    """With corpus weights, a corpus of 6 clips fills about half of each epoch instead of 6/66."""
    import voxemo.nn.train as train_mod

    cfg = TINY.replace(train=TINY.train.replace(epochs=6, batch_size=64))
    specs = [extract(voiced(0.3, 16000, rng, f0=120 + 40 * (i % 2)), 16000, cfg.audio, cfg.features) for i in range(66)]
    y = np.array([i % 2 for i in range(66)])
    orders: list[np.ndarray] = []
    real = train_mod.epoch_order
    monkeypatch.setattr(train_mod, "epoch_order", lambda *a: (orders.append(out := real(*a)), out)[1])
    train_model(specs, y, 2, cfg, progress=False)
    assert len(orders) == 6 and all(sorted(o) == list(range(66)) for o in orders)  # every clip once
    orders.clear()
    w = corpus_weights(recs("big", ["a"], ("sad",), per=60) + recs("small", ["b"], ("sad",), per=6))
    res = train_model(specs, y, 2, cfg, weights=w, progress=False)
    assert len(orders) == 6 and len(res.history) == 6
    share = np.mean([np.mean(o >= 60) for o in orders])
    assert 0.35 < share < 0.65  # uniform sampling gives 6/66 = 0.09
    again: list[np.ndarray] = orders[:]
    orders.clear()
    train_model(specs, y, 2, cfg, weights=w, progress=False)
    assert all(np.array_equal(a, b) for a, b in zip(again, orders))  # seeded
    with pytest.raises(ConfigError, match="weights must be 66"):
        train_model(specs, y, 2, cfg, weights=np.ones(3), progress=False)


def write_corpora(tmp_path: Path, fake_ravdess: Callable[..., Path], rng: np.random.Generator) -> tuple[Path, Path]:
    """A 6-actor RAVDESS-named corpus and a 4-speaker Emo-DB-named one (pitch-coded emotions, 0.5 s clips)."""
    ravdess = fake_ravdess((1, 2, 3, 4, 5, 6), seconds=0.5)
    emodb = tmp_path / "emodb"
    emodb.mkdir()
    codes = {"W": "angry", "L": "boredom", "F": "happy", "T": "sad", "N": "neutral"}
    for spk in ("03", "08", "09", "10"):
        for code, emotion in codes.items():
            for text in ("a01", "a02"):
                y = voiced(0.5, 16000, rng, f0=100.0 + 25.0 * (TAXONOMY.index(emotion) + 1))
                sf.write(str(emodb / f"{spk}{text}{code}a.wav"), np.pad(y, 4000), 16000)
    return ravdess, emodb


def test_cli_trains_on_two_corpora(tmp_path: Path, fake_ravdess: Callable[..., Path], rng: np.random.Generator,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    ravdess, emodb = write_corpora(tmp_path, fake_ravdess, rng)
    model = tmp_path / "model"
    assert main(["-q", "train", str(ravdess), str(emodb), "--corpus", "auto", "--corpus", "emodb", "--out",
                 str(model), "--epochs", "2", *FAST]) == 0
    assert "trained on 220 clips (emodb, ravdess)" in capsys.readouterr().out
    assert json.loads((model / "labels.json").read_text()) == list(TAXONOMY)
    report = json.loads((model / "training.json").read_text())
    assert report["corpora"] == {"emodb": 40, "ravdess": 180} and report["labels"] == list(TAXONOMY)
    val = report["variants"]["val_speakers"]
    assert any(s.startswith("emodb:") for s in val) and any(s.startswith("ravdess:") for s in val)
    clip = tmp_path / "clip.wav"
    sf.write(str(clip), voiced(1.0, 16000, rng), 16000)
    assert main(["predict", "--json", "--model", str(model), str(clip)]) == 0
    res = json.loads(capsys.readouterr().out)
    assert list(res["probabilities"]) == list(TAXONOMY) and sum(res["probabilities"].values()) == pytest.approx(1, 1e-3)
    # Emo-DB alone: a 6-class model with boredom (once refused)
    assert main(["-q", "train", str(emodb), "--out", str(tmp_path / "emodb-model"), "--epochs", "2", *FAST]) == 0
    assert json.loads((tmp_path / "emodb-model" / "labels.json").read_text()) == [
        "neutral", "happy", "sad", "angry", "boredom"]


def test_the_same_corpus_twice_keeps_its_speakers_apart(tmp_path: Path) -> None:
    from voxemo.apps.cli import _records_many

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for clip in ("03a01Wa.wav", "08a01Ta.wav"):
            sf.write(str(tmp_path / name / clip), np.zeros(800, np.float32), 8000)
    records = _records_many([str(tmp_path / "a"), str(tmp_path / "b")], False, ["emodb"])
    assert [r.corpus for r in records] == ["emodb", "emodb", "emodb-2", "emodb-2"]
    assert len({r.speaker for r in unique_speakers(records)}) == 4


def test_cli_corpus_count_must_match(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-q", "train", "a", "b", "c", "--corpus", "emodb", "--corpus", "tess", "--out",
                 str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--corpus given 2 times for 3 DATA" in err[0]


def test_a_model_of_other_classes_works_everywhere(tmp_path: Path, rng: np.random.Generator, make_wav) -> None:
    """A 3-class model (with boredom, without calm) through predict, ONNX-free timeline, the stream and the service."""
    from fastapi.testclient import TestClient

    from voxemo.apps.service import create_app
    from voxemo.inference.loading import load_model
    from voxemo.inference.stream import EmotionStream
    from voxemo.inference.timeline import timeline
    from voxemo.inference.torch_backend import EmotionClassifier

    classes = ["neutral", "sad", "boredom"]
    specs = [extract(voiced(0.8, 16000, rng, f0=100 + 60 * (i % 3)), 16000, TINY.audio, TINY.features)
             for i in range(12)]
    res = train_model(specs, np.arange(12) % 3, 3, TINY, progress=False)
    EmotionClassifier(res.model, TINY, classes).save(tmp_path / "m")
    model = load_model(tmp_path / "m")
    y = np.concatenate([voiced(2.5, 16000, rng), np.zeros(8000, np.float32), voiced(1.5, 16000, rng)])
    wav = make_wav("long.wav", y, 16000)
    out = model.predict_file(wav)
    assert list(out["probabilities"]) == classes and out["emotion"] in classes
    t = timeline(wav, model)
    assert t.segments and all(list(seg.probabilities) == classes for seg in t.segments)
    stream = EmotionStream(model, 16000)
    updates = stream.feed(y) + stream.flush()
    assert stream.classes == classes
    assert any(u.speech and list(u.probabilities) == classes for u in updates)
    with TestClient(create_app(model)) as client:
        assert client.get("/health").json()["classes"] == classes
        r = client.post("/predict", files={"file": ("x.wav", wav.read_bytes(), "audio/wav")})
        assert r.status_code == 200 and list(r.json()["probabilities"]) == classes


# --- cross-corpus scoring -----------------------------------------------------------------------------------------

def test_fold_sums_calm_into_neutral():
    p = np.array([[0.1, 0.5, 0.2, 0.2], [0.4, 0.1, 0.3, 0.2]])
    folded, classes = fold_probabilities(p, ["neutral", "calm", "happy", "sad"])
    assert classes == ("neutral", "happy", "sad")
    np.testing.assert_allclose(folded, [[0.6, 0.2, 0.2], [0.5, 0.3, 0.2]])
    same, classes = fold_probabilities(p, ["neutral", "calm", "happy", "sad"], fold={})
    assert classes == ("neutral", "calm", "happy", "sad")
    np.testing.assert_allclose(same, p)


def test_score_subset_on_a_hand_made_example():
    labels = ["neutral", "happy", "sad"]
    probs = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.5, 0.1, 0.4], [0.3, 0.3, 0.4], [0.1, 0.9, 0.0]])
    true = ["neutral", "happy", "sad", "sad", "boredom"]
    s = score_subset(true, probs, labels, ["neutral", "happy", "sad"])
    assert s.n == 4 and s.kept == (0, 1, 2, 3)
    assert s.predicted == ("neutral", "happy", "neutral", "sad")
    assert s.accuracy == pytest.approx(3 / 4) and s.uar == pytest.approx((1 + 1 + 0.5) / 3)
    assert s.confusion.tolist() == [[1, 0, 0], [0, 1, 0], [1, 0, 1]]
    assert [c.recall for c in s.per_class] == pytest.approx([1.0, 1.0, 0.5])
    # restricting to two classes: the sad clip at [0.5, 0.1, 0.4] can only be neutral or happy... and is dropped
    two = score_subset(true, probs, labels, ["neutral", "happy"])
    assert two.n == 2 and two.accuracy == 1.0


def test_cross_corpus_scoring_folds_and_restricts():
    """A RAVDESS-like 8-class model tested on Emo-DB-like clips: calm mass counts for neutral, boredom is left
    out, and a clip is predicted among the shared classes only (surprised is not shared)."""
    test = [Utterance(f"{i}.wav", "emodb", "03", e) for i, e in enumerate(
        ["neutral", "neutral", "angry", "boredom", "happy", "sad", "fearful", "disgust"])]
    probs = np.zeros((len(test), 8))
    lab = list(EMOTIONS)
    probs[0, lab.index("calm")] = 0.6  # calm -> neutral: right
    probs[0, lab.index("sad")] = 0.4
    probs[1, lab.index("surprised")] = 0.9  # surprised is not shared: the runner-up (angry) counts
    probs[1, lab.index("angry")] = 0.1
    probs[2, lab.index("angry")] = 1.0
    probs[3, lab.index("neutral")] = 1.0  # boredom: excluded
    probs[4, lab.index("happy")] = 1.0
    probs[5, lab.index("calm")] = 0.3  # neutral 0.3 + 0.3 = 0.6 beats sad 0.4
    probs[5, lab.index("neutral")] = 0.3
    probs[5, lab.index("sad")] = 0.4
    probs[6, lab.index("fearful")] = 1.0
    probs[7, lab.index("disgust")] = 1.0
    res = score_cross_corpus(test, probs, EMOTIONS, list(EMOTIONS))
    assert res.shared_classes == ("neutral", "happy", "sad", "angry", "fearful", "disgust")
    assert res.excluded == {"boredom": 1} and res.shared.n == 7
    assert [p.predicted for p in res.predictions] == ["neutral", "angry", "angry", "happy", "neutral",
                                                      "fearful", "disgust"]
    assert res.shared.accuracy == pytest.approx(5 / 7)
    assert res.shared.uar == pytest.approx((0.5 + 1 + 0 + 1 + 1 + 1) / 6)
    four = res.four_class
    assert four is not None
    assert four.labels == ("neutral", "happy", "sad", "angry") and four.n == 5
    assert four.uar == pytest.approx((0.5 + 1 + 0 + 1) / 4)
    # nothing shared is an error, not an empty report
    with pytest.raises(CorpusError, match="none in common"):
        score_cross_corpus(test[:1], probs[:1, :2], ["happy", "sad"], ["happy", "sad"])


def test_cross_corpus_trains_and_writes_a_report(tmp_path: Path, rng: np.random.Generator):
    cfg = TINY
    train = recs("ravdess", ["01", "02"], ("neutral", "calm", "happy", "sad"), per=3)
    test = recs("emodb", ["03"], ("neutral", "happy", "sad", "boredom"), per=2)
    f0 = {"neutral": 100, "calm": 110, "happy": 220, "sad": 150, "boredom": 105}
    spec = lambda r: extract(voiced(0.5, 16000, rng, f0=f0[r.emotion]), 16000, cfg.audio, cfg.features)  # noqa: E731
    res = cross_corpus(train, [spec(r) for r in train], test, [spec(r) for r in test], cfg, progress=False)
    assert res.model_labels == ("neutral", "calm", "happy", "sad")
    assert res.shared.labels == ("neutral", "happy", "sad") and res.scores.excluded == {"boredom": 2}
    assert res.epochs == 2 and res.train == {"ravdess": 24} and res.test == {"emodb": 8}
    assert res.four_class is None and res.shared.confusion.sum() == 6
    write_cross_corpus(res, tmp_path / "out")
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["confusion_labels"] == ["neutral", "happy", "sad"] and "predictions" not in metrics
    assert {"accuracy", "uar", "macro_f1", "per_class", "excluded"} <= set(metrics)
    assert (tmp_path / "out" / "predictions.csv").read_text().count("\n") == 7
    assert "ravdess → emodb" in (tmp_path / "out" / "report.md").read_text()
    assert (tmp_path / "out" / "confusion.png").stat().st_size > 0
    with pytest.raises(CorpusError, match="in both the training and the test"):
        cross_corpus(train, [spec(r) for r in train], train[:1], [spec(train[0])], cfg, progress=False)


def test_cli_cross_corpus(tmp_path: Path, fake_ravdess: Callable[..., Path], rng: np.random.Generator,
                          capsys: pytest.CaptureFixture[str]) -> None:
    ravdess, emodb = write_corpora(tmp_path, fake_ravdess, rng)
    out = tmp_path / "x"
    assert main(["-q", "evaluate", "--train", str(ravdess), "--test", str(emodb), "--out", str(out), "--epochs", "2",
                 *FAST]) == 0
    text = capsys.readouterr().out
    assert "ravdess -> emodb: 4 shared classes: UAR" in text and "4 classes: UAR" in text
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["labels"] == ["neutral", "happy", "sad", "angry"] and metrics["excluded"] == {"boredom": 8}
    assert metrics["n"] == 32 and metrics["four_class"]["n"] == 32 and metrics["epochs"] == 2
    # --train without --test is a one-line error
    assert main(["-q", "evaluate", "--train", str(ravdess), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs --train DATA... and --test DATA..." in err[0]


@pytest.mark.data
def test_real_ravdess_to_emodb_scoring_setup(real_ravdess: Path) -> None:
    """The real corpora load and share the six classes the README's cross-corpus result is scored on."""
    from voxemo.core.labels import shared_classes
    from voxemo.corpus import load_corpus

    emodb = real_ravdess.parent / "emodb"
    if not emodb.is_dir():
        pytest.skip("Emo-DB not available")
    train, test = load_corpus(real_ravdess), load_corpus(emodb)
    assert model_labels(train) == EMOTIONS and len(test) == 535
    assert shared_classes([r.emotion for r in train], [r.emotion for r in test]) == (
        "neutral", "happy", "sad", "angry", "fearful", "disgust")
