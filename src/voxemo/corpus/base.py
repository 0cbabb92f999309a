"""What every corpus loader shares: finding audio, unpacking archives, decoding codes, checking speakers.

Each corpus module turns its own naming convention into :class:`~voxemo.core.records.Utterance` records through
these helpers, so a missing folder, an unknown code or a duplicated clip reads the same in every corpus.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TypeVar

from voxemo.core.errors import CorpusError
from voxemo.core.records import Utterance
from voxemo.io.discovery import find_audio

T = TypeVar("T")


def unpack_zip(archive: str | os.PathLike[str], dest: str | os.PathLike[str] | None = None) -> Path:
    """Unpack a zip archive into ``dest`` (default: beside the archive, named after it) and return that folder.

    Extraction goes to a temporary folder renamed into place at the end, so an interrupted run leaves no
    half-filled folder behind; an existing complete folder is reused. Members with absolute paths or ``..``
    are refused.
    """
    a = Path(archive)
    target = Path(dest) if dest is not None else a.with_suffix("")
    if target.is_dir() and any(target.iterdir()):
        return target
    try:
        with zipfile.ZipFile(a) as zf:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=target.parent))
            try:
                for info in zf.infolist():
                    member = Path(info.filename)
                    if member.is_absolute() or ".." in member.parts:
                        raise CorpusError(f"{a}: unsafe member path {info.filename!r} in archive")
                zf.extractall(tmp)
                if target.exists():
                    target.rmdir()
                os.replace(tmp, target)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
    except zipfile.BadZipFile as exc:
        raise CorpusError(f"{a}: not a readable zip archive ({exc})") from None
    except OSError as exc:
        raise CorpusError(f"{a}: cannot unpack into {target} ({exc.strerror or exc}); unpack it elsewhere") from None
    return target


def corpus_folder(path: str | os.PathLike[str], corpus: str) -> Path:
    """The folder to scan for ``corpus``: ``path`` itself, or the folder a ``.zip`` at ``path`` unpacks to.

    Raises
    ------
    CorpusError
        If ``path`` does not exist or is a file other than a zip archive.
    """
    root = Path(path)
    if not root.exists():
        raise CorpusError(f"{root}: no such file or folder; pass the {corpus} folder or its .zip archive")
    if root.is_file():
        if root.suffix.lower() != ".zip":
            raise CorpusError(f"{root}: expected a folder or a .zip archive of {corpus}")
        root = unpack_zip(root)
    return root


def decode(table: Mapping[str, T], code: str, field: str, path: Path | str) -> T:
    """``table[code]``, or a :class:`CorpusError` naming the file, the field and the codes that exist.

    >>> decode({"W": "angry"}, "W", "emotion", "03a01Wa.wav")
    'angry'
    """
    if code not in table:
        raise CorpusError(f"{path}: unknown {field} code {code!r}; expected one of {', '.join(sorted(table))}")
    return table[code]


def audio_files(root: Path, corpus: str, example: str) -> list[Path]:
    """:func:`find_audio` under ``root``, or a :class:`CorpusError` saying what was expected when there is none."""
    files = find_audio(root)
    if not files:
        raise CorpusError(f"{root}: no {corpus} audio (.wav or .flac named like {example}) found")
    return files


def check_folder(path: Path, expected: str, folder: str | None) -> None:
    """Refuse a clip whose enclosing folder names a different speaker (or label) than its file name."""
    if folder is not None and folder != expected:
        raise CorpusError(f"{path}: {expected!r} in the file name but the folder says {folder!r}")


def unique_clips(records: Iterable[Utterance], *, by_name: bool = True, sort: bool = True) -> list[Utterance]:
    """Records sorted by path (unless ``sort`` is False), refusing the same clip twice.

    With ``by_name`` (corpora whose file names identify a clip) the same speaker and file stem twice, e.g. as
    .wav and .flac, is an error; otherwise (folders, manifests) only the same file listed twice is.
    """
    seen: dict[object, str] = {}
    out = sorted(records, key=lambda r: r.path) if sort else list(records)
    for r in out:
        key: object = (r.speaker, Path(r.path).stem) if by_name else Path(r.path).resolve()
        if key in seen:
            if not by_name:
                raise CorpusError(f"{r.path}: listed twice; keep one entry")
            raise CorpusError(f"{r.path}: the same clip also exists as {seen[key]}; keep one of them")
        seen[key] = r.path
    return out
