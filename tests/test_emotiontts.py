"""EmotionTTS Open DB loader: a fake corpus in the release's layout, bad names, and the real copy where it exists."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voxemo import load_corpus
from voxemo.core.errors import CorpusError
from voxemo.corpus import detect_corpus

#: Where the emotional part of github.com/emotiontts/emotiontts_open_db is unpacked beside the checkout.
REAL = Path(__file__).resolve().parents[1].parent / "extra" / "emotiontts"


def write_clips(root: Path, names: list[str]) -> Path:
    """A 0.1 s tone at 8 kHz under ``root`` for every relative name; returns ``root``."""
    y = (0.1 * np.sin(2 * np.pi * 220 * np.arange(800) / 8000)).astype(np.float32)
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), y, 8000)
    return root


def fake_release(root: Path) -> Path:
    """Two speakers of each sub-dataset, one clip per emotion, with the text files the release puts beside them."""
    names = [f"{subset}/{code}/wav/{code}{n:05d}.wav"
             for subset, codes in (("plain-to-emotional", ("ema", "emf")), ("emotional-to-emotional", ("nec", "nek")))
             for code in codes for n in (2, 102, 202, 302)]
    write_clips(root, names)
    for name in names:
        for folder in ("script", "transcript"):
            text = root / name.replace("/wav/", f"/{folder}/").replace(".wav", ".txt")
            text.parent.mkdir(parents=True, exist_ok=True)
            text.write_text("\ufeff너한테 그 말을 들으니까 정말 마음이 아프다.\n", encoding="utf-8")
    (root / "README.md").write_text("감정 표현 기술 연구를 위한 연구용 DB\n", encoding="utf-8")
    return root


def test_release_layout_is_detected_and_decoded(tmp_path: Path) -> None:
    root = fake_release(tmp_path / "Emotional")
    assert detect_corpus(root) == "emotiontts"
    recs = load_corpus(root)
    assert len(recs) == 16 and {r.corpus for r in recs} == {"emotiontts"}
    by_name = {Path(r.path).stem: (r.speaker, r.gender, r.emotion, r.statement) for r in recs}
    assert by_name["ema00002"] == ("nea", "female", "neutral", "p002")
    assert by_name["emf00102"] == ("nek", "male", "happy", "p002")
    assert by_name["nek00202"] == ("nek", "male", "sad", "e202")
    assert by_name["nec00302"] == ("nec", "female", "angry", "e302")
    # a plain-to-emotional voice is its emotional-to-emotional counterpart, so one person is one speaker
    assert Counter(r.speaker for r in recs) == {"nea": 4, "nek": 8, "nec": 4}
    assert {r.statement for r in recs if "plain" in r.path} == {"p002"}  # one sentence read in every emotion


def test_a_flat_folder_of_clips_is_enough(tmp_path: Path) -> None:
    root = write_clips(tmp_path / "flat", ["neo00001.flac", "emh00399.wav"])
    assert [(r.speaker, r.emotion) for r in load_corpus(root)] == [("nem", "angry"), ("neo", "neutral")]


@pytest.mark.parametrize(("name", "cause"), [
    ("emotional-to-emotional/nea/wav/nea00401.wav", "outside 1-400"),
    ("emotional-to-emotional/nea/wav/nea00000.wav", "outside 1-400"),
    ("emotional-to-emotional/nea/wav/nez00001.wav", "unknown speaker code 'nez'"),
    ("emotional-to-emotional/nea/wav/neb00001.wav", "the folder says 'nea'"),
    ("emotional-to-emotional/ema/wav/ema00001.wav", "inside emotional-to-emotional"),
    ("emotional-to-emotional/nea/wav/nea0001.wav", "not an EmotionTTS file name"),
])
def test_bad_names_are_one_line_errors(tmp_path: Path, name: str, cause: str) -> None:
    root = write_clips(tmp_path / "Emotional", ["emotional-to-emotional/neb/wav/neb00101.wav", name])
    with pytest.raises(CorpusError, match=cause) as err:
        load_corpus(root, "emotiontts")
    assert "\n" not in str(err.value)


@pytest.mark.data
def test_real_emotiontts_open_db() -> None:
    if not REAL.is_dir():
        pytest.skip(f"EmotionTTS Open DB not found in {REAL}")
    assert detect_corpus(REAL) == "emotiontts"
    recs = load_corpus(REAL)
    assert Counter(r.emotion for r in recs) == {"neutral": 75, "happy": 75, "sad": 75, "angry": 75}
    assert Counter(r.gender for r in {r.speaker: r for r in recs}.values()) == {"female": 5, "male": 5}
    assert Counter(r.speaker for r in recs) == {"nea": 40, "neb": 40, "nec": 20, "ned": 20, "nee": 20,
                                                "nek": 40, "nel": 40, "nem": 40, "nen": 20, "neo": 20}
    info = sf.info(recs[0].path)
    assert (info.samplerate, info.channels) == (22050, 1)
