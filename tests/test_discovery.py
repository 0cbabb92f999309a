"""Listing a folder's inputs lazily, one folder at a time, in the order ``sorted(rglob)`` gives."""

from __future__ import annotations

import os
from pathlib import Path

from voxemo.io.audio import AUDIO_EXTENSIONS
from voxemo.io.discovery import expand_inputs


def test_folders_are_listed_in_sorted_rglob_order_without_entering_links(tmp_path: Path) -> None:
    names = ["b.wav", "a.WAV", "a/b.wav", "a/b/c.wav", "a.b/x.flac", "a-b/y.mp3", "A/z.wav", ".hidden/h.wav",
             "a/.h.wav", "deep/er/still/d.ogg", "notes.txt", "a/b/readme.md", "Z.wav", "a b/s p.wav"]
    root = tmp_path / "tree"
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")
    os.symlink(root / "a", root / "link-to-a")  # a linked folder is not entered (as rglob does not)
    os.symlink(root / "b.wav", root / "c-link.wav")  # a linked file is listed
    expected = sorted(f for f in root.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS)
    assert [p for p, _ in expand_inputs([root])] == [str(f) for f in expected]
    assert len(expected) == 13


def test_a_folder_without_audio_is_one_error(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "notes.txt").write_text("x")
    [(path, error)] = expand_inputs([tmp_path])
    assert path == str(tmp_path) and error and "folder contains no audio files" in error
