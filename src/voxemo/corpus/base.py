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


#: Most bytes an archive may unpack to in all: room for the largest speech corpora (tens of GB).
MAX_UNPACKED_BYTES = 50 * 1024**3

#: Most times its compressed size an archive, and each member of it, may unpack to. Audio barely compresses
#: (WAV 1-3x, FLAC none) and text 5-20x; deflate tops out near 1,000x, on long runs of one byte: a bomb's mark.
MAX_RATIO = 100

#: Members (and archives) that unpack to less than this are never refused for their ratio: so little cannot fill
#: a disk, and a short text or a silent clip may well compress more than :data:`MAX_RATIO`.
RATIO_FREE_BYTES = 1024**2

#: Most members an archive may hold: far more than any corpus has clips, far fewer than an inode bomb needs.
MAX_MEMBERS = 1_000_000

_COPY_BLOCK = 1024**2

_TRUST = "(a zip bomb?); if you trust it, unpack it yourself and pass the folder"


def check_zip_limits(zf: zipfile.ZipFile, archive: str | os.PathLike[str]) -> None:
    """Refuse an archive whose listing declares more than a corpus unpacks to (a zip bomb), before writing anything.

    At most :data:`MAX_MEMBERS` members and :data:`MAX_UNPACKED_BYTES` bytes in all, and at most :data:`MAX_RATIO`
    times the compressed size for the whole archive and for each member (except below :data:`RATIO_FREE_BYTES`):
    what passes unpacks to no more than about ``MAX_RATIO`` times the archive's size. :func:`unpack_zip` also caps
    what it writes at these declared sizes, in case they lie.

    Raises
    ------
    CorpusError
        Naming the archive, the limit exceeded and what to do.
    """
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise CorpusError(f"{archive}: holds {len(infos):,} members, more than {MAX_MEMBERS:,} {_TRUST}")
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size >= RATIO_FREE_BYTES and ratio > MAX_RATIO:
            raise CorpusError(f"{archive}: member {info.filename!r} unpacks to {info.file_size:,} bytes, "
                              f"{ratio:,.0f} times its compressed size (at most {MAX_RATIO}) {_TRUST}")
    total = sum(info.file_size for info in infos)
    if total > MAX_UNPACKED_BYTES:
        raise CorpusError(f"{archive}: unpacks to {total:,} bytes, more than {MAX_UNPACKED_BYTES:,} {_TRUST}")
    ratio = total / max(sum(info.compress_size for info in infos), 1)
    if total >= RATIO_FREE_BYTES and ratio > MAX_RATIO:
        raise CorpusError(f"{archive}: unpacks to {total:,} bytes, {ratio:,.0f} times its compressed size "
                          f"(at most {MAX_RATIO}) {_TRUST}")


def _extract(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, budget: int, archive: Path) -> int:
    """Write one member under ``dest``, copying at most its declared size and ``budget`` bytes; return the bytes
    written. The caps hold whatever the member's data turns out to be."""
    path = dest / info.filename
    if info.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    cap = min(info.file_size, budget)
    written = 0
    with zf.open(info) as src, open(path, "wb") as out:
        while block := src.read(min(_COPY_BLOCK, cap - written + 1)):
            written += len(block)
            if written > cap:
                what = "its declared size" if cap == info.file_size else f"the {MAX_UNPACKED_BYTES:,}-byte limit"
                raise CorpusError(f"{archive}: member {info.filename!r} unpacks to more than {what} {_TRUST}")
            out.write(block)
    return written


def unpack_zip(archive: str | os.PathLike[str], dest: str | os.PathLike[str] | None = None) -> Path:
    """Unpack a zip archive into ``dest`` (default: beside the archive, named after it) and return that folder.

    Extraction goes to a temporary folder renamed into place at the end, so an interrupted run leaves no
    half-filled folder behind; an existing complete folder is reused. Members with absolute paths or ``..``
    are refused, and so is a zip bomb (:func:`check_zip_limits`): members are written one by one, none beyond
    its declared size and all together not beyond :data:`MAX_UNPACKED_BYTES`, and on any error the temporary
    folder is deleted.

    Raises
    ------
    CorpusError
        If the archive is unreadable, unsafe, a zip bomb, or cannot be written.
    """
    a = Path(archive)
    target = Path(dest) if dest is not None else a.with_suffix("")
    if target.is_dir() and any(target.iterdir()):
        return target
    try:
        with zipfile.ZipFile(a) as zf:
            for info in zf.infolist():
                member = Path(info.filename)
                if member.is_absolute() or ".." in member.parts:
                    raise CorpusError(f"{a}: unsafe member path {info.filename!r} in archive")
            check_zip_limits(zf, a)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=target.parent))
            try:
                budget = MAX_UNPACKED_BYTES
                for info in zf.infolist():
                    budget -= _extract(zf, info, tmp, budget, a)
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
