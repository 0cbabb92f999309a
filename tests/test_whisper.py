"""The Whisper family: the CTranslate2 reader and the ONNX export (on random weights), the shipped encoder file
(hash, parity with the float32 encoder on a real clip), the linear head, and a model trained, saved, loaded,
adapted and fine-tuned end to end on real audio."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from voxemo.core.errors import ModelError
from voxemo.experiment.probe import whisper_config
from voxemo.inference.encoders import ENCODERS, encode, encoder_session
from voxemo.nn.probe import ProbeHead, fit_head

DATA = Path(__file__).resolve().parent / "data"
REFERENCE_CLIP = "Actor_01/03-01-05-01-01-01-01.flac"


def write_ctranslate2(path: Path, variables: dict[str, np.ndarray]) -> None:
    """A CTranslate2 model file (binary version 6) holding ``variables`` as float32."""
    def text(s: str) -> bytes:
        raw = s.encode() + b"\0"
        return struct.pack("H", len(raw)) + raw

    out = [struct.pack("I", 6), text("WhisperSpec"), struct.pack("I", 3), struct.pack("I", len(variables))]
    for name, value in variables.items():
        a = np.ascontiguousarray(value, np.float32)
        out += [text(name), struct.pack("B", a.ndim), *(struct.pack("I", n) for n in a.shape),
                struct.pack("B", 0), struct.pack("I", a.nbytes), a.tobytes()]
    path.write_bytes(b"".join(out))


def ct2_variables(encoder) -> dict[str, np.ndarray]:  # noqa: ANN001
    """``encoder``'s parameters under CTranslate2's Whisper names."""
    v = {"encoder/conv1/weight": encoder.conv1.weight, "encoder/conv1/bias": encoder.conv1.bias,
         "encoder/conv2/weight": encoder.conv2.weight, "encoder/conv2/bias": encoder.conv2.bias,
         "encoder/position_encodings/encodings": encoder.positions, "decoder/embeddings/weight": encoder.conv1.bias}
    for i, b in enumerate(encoder.blocks):
        p = f"encoder/layer_{i}"
        for mod, name in ((b.attn_ln, "self_attention/layer_norm"), (b.mlp_ln, "ffn/layer_norm")):
            v[f"{p}/{name}/gamma"], v[f"{p}/{name}/beta"] = mod.weight, mod.bias
        for mod, name in ((b.qkv, "self_attention/linear_0"), (b.out, "self_attention/linear_1"),
                          (b.fc1, "ffn/linear_0"), (b.fc2, "ffn/linear_1")):
            v[f"{p}/{name}/weight"], v[f"{p}/{name}/bias"] = mod.weight, mod.bias
    return {k: t.detach().numpy() for k, t in v.items()}


def test_reader_and_export_round_trip(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from voxemo.nn.whisper import WhisperEncoder, export_encoder, read_ctranslate2

    torch.manual_seed(0)
    original = WhisperEncoder(blocks=1, layers=(0, 1))
    with torch.no_grad():
        original.positions.normal_(0, 0.1)
    write_ctranslate2(tmp_path / "model.bin", ct2_variables(original))
    variables = read_ctranslate2(tmp_path / "model.bin")
    assert "embeddings/weight" not in variables and "conv1/weight" in variables  # the decoder's are left out
    copy = WhisperEncoder(blocks=1, layers=(0, 1))
    copy.load_ctranslate2(variables)
    x = torch.full((2, 80, 300), -80.0)
    x[:, :, 20:260] = -40 * torch.rand(2, 80, 240)
    expected = original(x).numpy()
    np.testing.assert_allclose(copy(x).numpy(), expected, rtol=0, atol=1e-6)
    assert expected.shape == (2, copy.n_features)

    session = encoder_session(str(export_encoder(copy, tmp_path / "enc.onnx", quantize=False)),
                              _sha(tmp_path / "enc.onnx"))
    np.testing.assert_allclose(encode(session, x.numpy()), expected, atol=1e-4)
    # frames at the floor in every band are left out of the statistics: more of them leave the convolutions' (layer
    # 0's) unchanged; the blocks' attention does see them, which is why prediction never pads a window
    padded = torch.cat([x[:1], torch.full((1, 80, 100), -80.0)], dim=2)
    got = encode(session, padded.numpy())
    np.testing.assert_allclose(got[:, :1024], expected[:1, :1024], atol=1e-4)
    assert not np.allclose(got[:, 1024:], expected[:1, 1024:], atol=1e-3)


def test_reader_refuses_other_files(tmp_path: Path) -> None:
    from voxemo.nn.whisper import read_ctranslate2

    (tmp_path / "x.bin").write_bytes(b"RIFF....WAVEfmt ")
    with pytest.raises(ModelError, match="x.bin"):
        read_ctranslate2(tmp_path / "x.bin")


def _sha(path: Path) -> str:
    from voxemo.inference.encoders import file_sha256

    return file_sha256(path)


def test_shipped_encoder_matches_the_float32_encoder_on_a_real_clip(real_ravdess: Path) -> None:
    """``tests/data/whisper_reference.npy``: this clip's features from the float32 encoder (built from the same
    weights, matching CTranslate2's own encoder to 6e-4); the shipped int8 file stays within its measured error."""
    from voxemo.dsp.features import extract
    from voxemo.dsp.scoring import clip_windows
    from voxemo.io.audio import load_audio

    cfg = whisper_config()
    info = ENCODERS["whisper-base"]
    assert _sha(info.path()) == info.sha256
    y, sr = load_audio(real_ravdess / REFERENCE_CLIP)
    (wins,) = clip_windows([extract(y, sr, cfg.audio, cfg.features, name="clip")], cfg)
    got = encode(encoder_session(str(info.path()), info.sha256), np.stack(wins))
    ref = np.load(DATA / "whisper_reference.npy")
    assert got.shape == ref.shape == (1, info.n_features)
    cosine = float((got * ref).sum() / np.linalg.norm(got) / np.linalg.norm(ref))
    assert cosine > 0.999
    assert np.abs(got - ref).mean() < 0.05 * np.abs(ref).mean()


def test_a_window_s_features_do_not_depend_on_its_batch_mates(real_ravdess: Path) -> None:
    """Dynamic int8 quantisation scales activations by the whole input: windows encoded together moved each other's
    features by up to 4 (standardised units); each window must give what it gives alone, and so must each clip of
    ``predict_proba([...])``."""
    from voxemo.inference.loading import load_model

    clf = load_model("whisper")
    clips = [real_ravdess / "Actor_01" / f"03-01-0{e}-01-01-01-01.flac" for e in (1, 3, 5)]
    specs = [clf.features(c) for c in clips]
    n = min(s.shape[-1] for s in specs)
    together = np.stack([s[:, :n] for s in specs])
    session = encoder_session(str(ENCODERS["whisper-base"].path()), ENCODERS["whisper-base"].sha256)
    alone = np.concatenate([encode(session, together[i : i + 1]) for i in range(len(together))])
    np.testing.assert_array_equal(encode(session, together), alone)
    np.testing.assert_allclose(clf.predict_proba(clips), np.stack([clf.predict_proba(c) for c in clips]), atol=1e-6)


def test_an_altered_encoder_file_is_refused_in_one_line(tmp_path: Path) -> None:
    info = ENCODERS["whisper-base"]
    bad = tmp_path / "whisper-base.onnx"
    shutil.copyfile(info.path(), bad)
    with open(bad, "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01")
    with pytest.raises(ModelError, match="SHA-256") as exc:
        encoder_session(str(bad), info.sha256)
    assert "\n" not in str(exc.value)
    with pytest.raises(ModelError, match="missing"):
        encoder_session(str(tmp_path / "none.onnx"), info.sha256)


# ---- the head ------------------------------------------------------------------------------------------------
def _blobs(rng: np.random.Generator, n: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 3, n)
    centres = np.eye(3, 6) * 3
    return centres[y] + rng.normal(0, 1, (n, 6)) + shift * np.array([1.0, -1.0, 0.5, 0.0, 1.0, 0.0]), y


def test_head_learns_and_corpus_standardisation_removes_an_offset(rng: np.random.Generator) -> None:
    xa, ya = _blobs(rng, 300, 0.0)
    xb, yb = _blobs(rng, 300, 5.0)  # a second corpus, shifted as another microphone and language would
    x, y = np.concatenate([xa, xb]), np.concatenate([ya, yb])
    corpus = ["a"] * 300 + ["b"] * 300
    head = fit_head(x, y, 3, corpus=corpus, speaker=["s"] * 600, clip=list(range(600)), norm="corpus", c=1.0)
    xt, yt = _blobs(rng, 300, -4.0)  # a third, unseen offset
    assert (head.logits(xt).argmax(1) == yt).mean() < 0.6  # the training corpora's moments do not fit it ...
    adapted = head.adapted(xt, 1.0)  # ... its own (no labels) do
    assert (adapted.logits(xt).argmax(1) == yt).mean() > 0.9
    mean_shift, _ = head.shift(adapted)
    assert mean_shift > 1.0


def test_a_corpus_never_teaches_against_a_class_it_lacks(rng: np.random.Generator) -> None:
    xa, ya = _blobs(rng, 300, 0.0)
    keep = ya < 2  # corpus b has no class 2
    xb, yb = _blobs(rng, 300, 0.0)
    x = np.concatenate([xa, xb[yb < 2]])
    y = np.concatenate([ya, yb[yb < 2]])
    corpus = ["a"] * 300 + ["b"] * int((yb < 2).sum())
    head = fit_head(x, y, 3, corpus=corpus, speaker=corpus, clip=list(range(len(y))), norm="pooled", c=1.0)
    xt, yt = _blobs(rng, 300, 0.0)
    recall2 = (head.logits(xt[yt == 2]).argmax(1) == 2).mean()
    assert recall2 > 0.8 and keep.any()


def test_head_files_round_trip_and_bad_heads_are_refused(tmp_path: Path, rng: np.random.Generator) -> None:
    x, y = _blobs(rng, 120, 0.0)
    head = fit_head(x, y, 3, corpus=["a"] * 120, speaker=["s"] * 120, clip=list(range(120)))
    head.save(tmp_path / "head.npz")
    back = ProbeHead.load(tmp_path / "head.npz")
    np.testing.assert_array_equal(back.logits(x), head.logits(x))
    tuned = head.tuned(x[:30], y[:30])
    assert tuned.weight.shape == head.weight.shape and not np.allclose(tuned.weight, head.weight)
    with pytest.raises(ModelError, match="non-finite"):
        ProbeHead(head.mean, head.std, head.weight * np.nan, head.bias)
    (tmp_path / "bad.npz").write_bytes(b"not numpy")
    with pytest.raises(ModelError, match="bad.npz"):
        ProbeHead.load(tmp_path / "bad.npz")


# ---- a model end to end on real audio --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_whisper_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A whisper model trained by ``voxemo train --model whisper`` on 6 RAVDESS actors' angry, happy, neutral and
    sad clips (3 each)."""
    from conftest import ravdess_root

    root = ravdess_root()
    if root is None:
        pytest.skip("real RAVDESS not found")
    from voxemo.apps.cli import main

    out = tmp_path_factory.mktemp("whisper") / "model"
    manifest = out.parent / "clips.csv"
    rows = ["path,label,speaker"]
    for actor in (1, 2, 3, 4, 5, 6):
        for code, emotion in (("01", "neutral"), ("03", "happy"), ("04", "sad"), ("05", "angry")):
            for f in sorted((root / f"Actor_{actor:02d}").glob(f"03-01-{code}-*"))[:3]:
                rows.append(f"{f},{emotion},{actor}")
    manifest.write_text("\n".join(rows) + "\n")
    assert main(["train", "--model", "whisper", str(manifest), "--out", str(out), "--jobs", "1"]) == 0
    return out


def test_trained_model_folder_predicts_real_speech_and_refuses_noise(small_whisper_model: Path, tmp_path: Path,
                                                                     real_ravdess: Path) -> None:
    from voxemo.inference.loading import load_model
    from voxemo.inference.results import NoSpeech, Prediction

    assert {p.name for p in small_whisper_model.iterdir()} >= {"config.json", "labels.json", "head.npz",
                                                               "encoder.json", "calibration.json", "training.json"}
    assert json.loads((small_whisper_model / "encoder.json").read_text())["sha256"] == ENCODERS["whisper-base"].sha256
    clf = load_model(small_whisper_model)
    assert clf.backend == "onnx" and sorted(clf.classes_) == ["angry", "happy", "neutral", "sad"]
    angry = sorted((real_ravdess / "Actor_08").glob("03-01-05-02-*"))[:4]  # actors the model never heard
    results = [clf.predict_result(p) for p in angry]
    assert all(isinstance(r, Prediction) for r in results)
    assert sum(r.emotion == "angry" for r in results if isinstance(r, Prediction)) >= 2
    probs = clf.predict_proba([str(p) for p in angry])
    assert probs.shape == (4, 4) and np.allclose(probs.sum(1), 1, atol=1e-5)
    import soundfile as sf

    noise = tmp_path / "noise.wav"
    sf.write(noise, np.random.default_rng(0).normal(0, 0.1, 16000 * 2), 16000)
    assert isinstance(clf.predict_result(noise), NoSpeech)
    with pytest.raises(ModelError, match="ONNX Runtime only"):
        load_model(small_whisper_model, backend="torch")
    stale = tmp_path / "stale"
    shutil.copytree(small_whisper_model, stale)
    (stale / "encoder.json").write_text(json.dumps({"name": "whisper-base", "sha256": "ab" * 32}))
    with pytest.raises(ModelError, match="another build of whisper-base"):
        load_model(stale)


def test_trained_model_adapts_and_fine_tunes_through_the_cli(small_whisper_model: Path, tmp_path: Path,
                                                             real_ravdess: Path) -> None:
    from voxemo.apps.cli import main
    from voxemo.inference.loading import load_model

    target = real_ravdess / "Actor_07"
    out = tmp_path / "adapted"
    assert main(["adapt", "--model", str(small_whisper_model), str(target), "--out", str(out), "--jobs", "1",
                 "--prior-seconds", "0", "--min-seconds", "5"]) == 0
    adapted = load_model(out)
    base = load_model(small_whisper_model)
    assert adapted.adaptation is not None and adapted.adaptation.weight == 1.0
    assert not np.allclose(adapted.head.mean, base.head.mean)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(adapted.head.weight, base.head.weight)  # type: ignore[attr-defined]
    assert "standardisation moments" in (out / "MODEL_CARD.md").read_text()
    clip = sorted(target.glob("03-01-05-*"))[0]
    assert adapted.predict_result(clip).speech
    tuned = base.fine_tune([(str(p), "angry") for p in sorted(target.glob("03-01-05-*"))[:4]]
                           + [(str(p), "sad") for p in sorted(target.glob("03-01-04-*"))[:4]])
    assert tuned.adaptation is not None and tuned.adaptation.per_class == {"sad": 4, "angry": 4}
    assert not np.allclose(tuned.head.weight, base.head.weight)  # type: ignore[attr-defined]


def test_whisper_evaluates_under_a_protocol(small_whisper_model: Path, tmp_path: Path) -> None:
    """``voxemo evaluate --model whisper``: speaker-independent folds over the same clips, adapted per fold."""
    from voxemo.apps.cli import main

    manifest = small_whisper_model.parent / "clips.csv"
    out = tmp_path / "eval"
    assert main(["evaluate", "--model", "whisper", str(manifest), "--protocol", "speaker-6fold", "--adapt", "--out",
                 str(out), "--jobs", "1"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "whisper"
    assert 0.0 <= metrics["summary"]["uar"]["mean"] <= 1.0


def test_the_default_model_adapts_without_torch_and_refuses_export_in_one_line(real_ravdess: Path,
                                                                               tmp_path: Path) -> None:
    """The base install (no torch) adapts the default model; `voxemo export` names the CNN model to use instead."""
    import subprocess
    import sys

    clips = sorted(str(p) for p in (real_ravdess / "Actor_05").glob("*.*"))[:20]
    code = ("import sys; sys.modules['torch'] = None; from voxemo.apps.cli import main; "
            f"rc = main(['-q', 'adapt', *{clips!r}, '--out', {str(tmp_path / 'a')!r}, '--jobs', '1']); "
            "print(rc, 'torch' in sys.modules and sys.modules['torch'] is not None)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.splitlines()[-1] == "0 False", out.stdout + out.stderr
    assert (tmp_path / "a" / "head.npz").is_file() and (tmp_path / "a" / "adaptation.json").is_file()
    from voxemo.apps.cli import main

    done = subprocess.run([sys.executable, "-m", "voxemo", "export", "--onnx", str(tmp_path / "x.onnx")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--model fast" in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert main(["-q", "export", "--model", "fast", "--onnx", str(tmp_path / "fast.onnx")]) == 0


def test_whisper_is_tested_through_a_telephone_line_and_trains_on_telephone_copies(small_whisper_model: Path,
                                                                                  tmp_path: Path) -> None:
    """``--test-channel telephone`` changes only the test audio; ``augment.telephone`` adds one telephone copy of
    every training clip to each fold."""
    from voxemo.apps.cli import main
    from voxemo.corpus.sources import load_source
    from voxemo.experiment.probe import evaluate_probe, whisper_config

    manifest = small_whisper_model.parent / "clips.csv"
    recs = load_source(str(manifest), None, progress=False)
    cfg = whisper_config()
    wide = evaluate_probe(recs, cfg, "speaker-6fold", jobs=1, progress=False)
    phone = evaluate_probe(recs, cfg, "speaker-6fold", jobs=1, progress=False, channel="telephone")
    assert [f.n_train for f in phone.folds] == [f.n_train for f in wide.folds]
    p_wide = np.array([p.confidence for p in wide.predictions])
    p_phone = np.array([p.confidence for p in phone.predictions])
    assert p_wide.shape == p_phone.shape and not np.allclose(p_wide, p_phone, atol=1e-3)
    copied = evaluate_probe(recs, cfg.replace(augment=cfg.augment.replace(telephone=1.0)), "speaker-6fold", jobs=1,
                            progress=False, channel="telephone")
    for c, p in zip(copied.folds, phone.folds):  # every training clip once more (validation clips: no copy)
        assert p.n_train < c.n_train <= 2 * p.n_train
    out = tmp_path / "eval"
    assert main(["evaluate", "--model", "whisper", str(manifest), "--protocol", "speaker-6fold", "--test-channel",
                 "telephone", "--set", "augment.telephone=1", "--out", str(out), "--jobs", "1"]) == 0
    assert json.loads((out / "metrics.json").read_text())["model"] == "whisper"
