"""RAVDESS file names and the corpus loader (folder tree, flat folder, FLAC, zip archive)."""

from __future__ import annotations

import shutil
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from voxemo.core.errors import CorpusError
from voxemo.corpus import RavdessName, load_ravdess, parse_ravdess_name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("03-01-05-02-01-02-12.wav",
         RavdessName("audio-only", "speech", "angry", "strong", "Kids are talking by the door", 2, "12", "female")),
        ("Actor_01/03-01-01-01-01-01-01.flac",
         RavdessName("audio-only", "speech", "neutral", "normal", "Kids are talking by the door", 1, "01", "male")),
        ("02-02-06-01-02-01-23.mp4",
         RavdessName("video-only", "song", "fearful", "normal", "Dogs are sitting by the door", 1, "23", "male")),
        ("/data/Actor_24/01-01-08-02-02-02-24",
         RavdessName("audio-video", "speech", "surprised", "strong", "Dogs are sitting by the door", 2, "24",
                     "female")),
        (Path("Actor_07/03-01-07-01-02-01-07.WAV"),
         RavdessName("audio-only", "speech", "disgust", "normal", "Dogs are sitting by the door", 1, "07", "male")),
    ],
)
def test_parse_name(name: str | Path, expected: RavdessName) -> None:
    assert parse_ravdess_name(name) == expected


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("03-01-05-02-01-02.wav", "not a RAVDESS file name"),
        ("03-01-05-02-01-02-12-01.wav", "not a RAVDESS file name"),
        ("3-1-5-2-1-2-12.wav", "not a RAVDESS file name"),
        ("03_01_05_02_01_02_12.wav", "not a RAVDESS file name"),
        ("recording.wav", "not a RAVDESS file name"),
        ("03-01-09-01-01-01-01.wav", "unknown emotion code '09'"),
        ("03-01-00-01-01-01-01.wav", "unknown emotion code '00'"),
        ("03-01-05-03-01-01-01.wav", "unknown intensity code '03'"),
        ("04-01-05-01-01-01-01.wav", "unknown modality code '04'"),
        ("03-03-05-01-01-01-01.wav", "unknown vocal channel code '03'"),
        ("03-01-05-01-03-01-01.wav", "unknown statement code '03'"),
        ("03-01-05-01-01-03-01.wav", "unknown repetition code '03'"),
        ("03-01-05-01-01-01-25.wav", "unknown actor code '25'"),
        ("03-01-05-01-01-01-00.wav", "unknown actor code '00'"),
        ("03-01-01-02-01-01-01.wav", "neutral clips have no strong intensity"),
    ],
)
def test_parse_bad_name(name: str, message: str) -> None:
    with pytest.raises(CorpusError, match=message) as err:
        parse_ravdess_name(f"Actor_01/{name}")
    assert name in str(err.value)


# -- loader -----------------------------------------------------------------------------------------------------

SHORT = {"seconds": 0.05, "sr": 8000}  # the loader never reads audio: keep the fake clips tiny


def test_load_actor_tree(fake_ravdess) -> None:
    root = fake_ravdess(actors=(1, 2), **SHORT)
    records = load_ravdess(root)
    assert len(records) == 2 * 30
    assert [r.path for r in records] == sorted(r.path for r in records)
    assert {r.speaker: r.gender for r in records} == {"01": "male", "02": "female"}
    assert {r.corpus for r in records} == {"ravdess"}
    assert Counter(r.emotion for r in records)["neutral"] == 2 * 2
    first = records[0]
    assert Path(first.path) == root / "Actor_01" / "03-01-01-01-01-01-01.wav"
    assert (first.emotion, first.intensity, first.repetition) == ("neutral", "normal", 1)


def test_load_flat_folder(fake_ravdess) -> None:
    root = fake_ravdess(actors=(3, 4), flat=True, **SHORT)
    records = load_ravdess(str(root))
    assert len(records) == 60
    assert all(Path(r.path).parent == root for r in records)


def test_load_flac(fake_ravdess) -> None:
    records = load_ravdess(fake_ravdess(actors=(5,), ext=".flac", **SHORT))
    assert len(records) == 30 and all(r.path.endswith(".flac") for r in records)


def test_load_zip(fake_ravdess, tmp_path: Path) -> None:
    root = fake_ravdess(actors=(1, 2), **SHORT)
    archive = tmp_path / "Audio_Speech_Actors_01-24.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted(root.rglob("*.wav")):
            zf.write(f, f.relative_to(root).as_posix())
    shutil.rmtree(root)
    records = load_ravdess(archive)
    unpacked = tmp_path / "Audio_Speech_Actors_01-24"
    assert len(records) == 60
    assert all(Path(r.path).is_relative_to(unpacked) for r in records)
    assert (unpacked / "Actor_02" / "03-01-08-02-02-01-02.wav").is_file()
    assert load_ravdess(archive) == records  # the unpacked folder is reused


def test_load_skips_song_and_hidden_files(fake_ravdess) -> None:
    root = fake_ravdess(actors=(1,), **SHORT)
    clip = root / "Actor_01" / "03-01-01-01-01-01-01.wav"
    shutil.copy(clip, root / "Actor_01" / "03-02-03-01-01-01-01.wav")  # song
    shutil.copy(clip, root / "Actor_01" / "._03-01-01-01-01-02-01.wav")  # macOS resource fork
    (root / ".trash").mkdir()
    shutil.copy(clip, root / ".trash" / "junk.wav")
    (root / "README.txt").write_text("not audio")
    assert len(load_ravdess(root)) == 30


def test_load_wrong_actor_folder(fake_ravdess) -> None:
    root = fake_ravdess(actors=(1, 2), **SHORT)
    wrong = root / "Actor_01" / "03-01-01-01-01-02-02.wav"
    shutil.copy(root / "Actor_02" / "03-01-01-01-01-01-02.wav", wrong)
    with pytest.raises(CorpusError, match="actor 02 in the file name but the folder is Actor_01") as err:
        load_ravdess(root)
    assert str(wrong) in str(err.value)


def test_load_duplicate_clip(fake_ravdess) -> None:
    root = fake_ravdess(actors=(1,), **SHORT)
    wav = root / "Actor_01" / "03-01-02-01-01-01-01.wav"
    shutil.copy(wav, wav.with_suffix(".flac"))
    with pytest.raises(CorpusError, match="the same clip also exists as") as err:
        load_ravdess(root)
    assert "03-01-02-01-01-01-01" in str(err.value)


def test_load_bad_name_in_folder(fake_ravdess) -> None:
    root = fake_ravdess(actors=(1,), **SHORT)
    bad = root / "Actor_01" / "03-01-09-01-01-01-01.wav"
    shutil.copy(root / "Actor_01" / "03-01-01-01-01-01-01.wav", bad)
    with pytest.raises(CorpusError, match="unknown emotion code") as err:
        load_ravdess(root)
    assert str(bad) in str(err.value)


def test_load_folder_without_clips(tmp_path: Path) -> None:
    (tmp_path / "empty" / "Actor_01").mkdir(parents=True)
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(CorpusError, match="no RAVDESS speech clips") as err:
        load_ravdess(tmp_path / "empty")
    assert str(tmp_path / "empty") in str(err.value)


def test_load_only_song_clips(tmp_path: Path, make_wav) -> None:
    import numpy as np

    make_wav("songs/Actor_01/03-02-03-01-01-01-01.wav", np.zeros(80, np.float32), 8000)
    with pytest.raises(CorpusError, match="no RAVDESS speech clips"):
        load_ravdess(tmp_path / "songs")


def test_load_missing_path(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="no such file or folder") as err:
        load_ravdess(tmp_path / "missing")
    assert str(tmp_path / "missing") in str(err.value)


def test_load_file_that_is_not_a_zip(tmp_path: Path) -> None:
    (tmp_path / "clips.tar").write_bytes(b"x")
    with pytest.raises(CorpusError, match="expected a folder or a .zip archive") as err:
        load_ravdess(tmp_path / "clips.tar")
    assert "clips.tar" in str(err.value)


def test_load_corrupt_zip(tmp_path: Path) -> None:
    (tmp_path / "ravdess.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CorpusError, match="not a readable zip archive") as err:
        load_ravdess(tmp_path / "ravdess.zip")
    assert "ravdess.zip" in str(err.value)
    assert not (tmp_path / "ravdess").exists()


def test_load_zip_with_unsafe_member(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as zf:
        zf.writestr("../03-01-01-01-01-01-01.wav", b"RIFF")
    with pytest.raises(CorpusError, match="unsafe member path"):
        load_ravdess(tmp_path / "evil.zip")
    assert not (tmp_path / "evil").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["evil.zip"]  # no temporary folder left behind


# -- the real corpus --------------------------------------------------------------------------------------------


@pytest.mark.data
def test_real_ravdess(real_ravdess: Path) -> None:
    records = load_ravdess(real_ravdess)
    assert len(records) == 1440
    assert len({r.path for r in records}) == 1440
    per_actor = Counter(r.speaker for r in records)
    assert sorted(per_actor) == [f"{a:02d}" for a in range(1, 25)]
    assert set(per_actor.values()) == {60}
    emotions = Counter(r.emotion for r in records)
    assert len(emotions) == 8
    assert emotions["neutral"] == 96 and set(emotions.values()) == {96, 192}
    genders = Counter(g for g in {r.speaker: r.gender for r in records}.values())
    assert genders == {"male": 12, "female": 12}
    assert Counter(r.intensity for r in records) == {"normal": 768, "strong": 672}
    assert set(Counter(r.statement for r in records).values()) == {720}
    assert Counter(r.repetition for r in records) == {1: 720, 2: 720}
