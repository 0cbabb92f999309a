"""Utterance records and the manifest format (JSONL / CSV)."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxemo.core.errors import CorpusError
from voxemo.core.records import Utterance
from voxemo.io.manifest import read_manifest, write_manifest

RECORDS = [
    Utterance(path="Actor_12/03-01-05-02-01-02-12.wav", corpus="ravdess", speaker="12", emotion="angry",
              gender="female", intensity="strong", statement="Kids are talking by the door", repetition=2),
    Utterance(path="clips/a, b \"quoted\".wav", corpus="other", speaker="s1", emotion="neutral"),
    Utterance(path="x.flac", corpus="other", speaker="s2", emotion="surprised", gender="male", repetition=1),
]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_round_trip(tmp_path: Path, suffix: str) -> None:
    path = write_manifest(RECORDS, tmp_path / "out" / f"manifest{suffix}")
    assert path == tmp_path / "out" / f"manifest{suffix}"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind
    back = read_manifest(path)
    assert back == RECORDS
    assert back[1].gender is None and back[1].repetition is None
    assert isinstance(back[0].repetition, int)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_empty_round_trip(tmp_path: Path, suffix: str) -> None:
    assert read_manifest(write_manifest([], tmp_path / f"m{suffix}")) == []


def test_unknown_emotion() -> None:
    with pytest.raises(CorpusError, match=r"a\.wav: unknown emotion 'bored'"):
        Utterance(path="a.wav", corpus="x", speaker="1", emotion="bored")


def test_to_dict() -> None:
    assert RECORDS[2].to_dict() == {"path": "x.flac", "corpus": "other", "speaker": "s2", "emotion": "surprised",
                                    "gender": "male", "intensity": None, "statement": None, "repetition": 1}


@pytest.mark.parametrize("name", ["manifest.txt", "manifest.json", "manifest"])
def test_bad_suffix(tmp_path: Path, name: str) -> None:
    with pytest.raises(CorpusError, match="must end in .jsonl or .csv"):
        write_manifest(RECORDS, tmp_path / name)
    (tmp_path / name).write_text("{}\n")
    with pytest.raises(CorpusError, match="must end in .jsonl or .csv"):
        read_manifest(tmp_path / name)


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="nope.jsonl: manifest not found"):
        read_manifest(tmp_path / "nope.jsonl")


HEADER = "path,corpus,speaker,emotion,gender,intensity,statement,repetition\n"


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("not-json.jsonl", '{"path": "a.wav", \n'),
        ("list.jsonl", "[1, 2]\n"),
        ("unknown-field.jsonl", '{"path": "a", "corpus": "c", "speaker": "1", "emotion": "sad", "age": 3}\n'),
        ("missing-field.jsonl", '{"path": "a", "corpus": "c"}\n'),
        ("bad-emotion.jsonl", '{"path": "a", "corpus": "c", "speaker": "1", "emotion": "bored"}\n'),
        ("garbage.csv", "hello world\n"),
        ("empty.csv", ""),
        ("wrong-header.csv", "path,corpus\na.wav,c\n"),
        ("short-row.csv", HEADER + "a.wav,c\n"),
        ("bad-repetition.csv", HEADER + "a.wav,c,1,sad,,,,first\n"),
        ("binary.jsonl", b"\xff\xfe\x00\x01"),
    ],
)
def test_garbled_manifest(tmp_path: Path, name: str, text: str | bytes) -> None:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(CorpusError, match="not a valid voxemo manifest") as err:
        read_manifest(path)
    assert str(err.value).startswith(str(path))


def test_column_order_does_not_matter(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("emotion,path,corpus,speaker,gender,intensity,statement,repetition\nsad,a.wav,c,1,,,,2\n")
    assert read_manifest(path) == [Utterance(path="a.wav", corpus="c", speaker="1", emotion="sad", repetition=2)]
