"""Resumable HTTP downloads and the RAVDESS speech archive.

:func:`download` streams a URL into ``<dest>.part`` and renames it into place only once its size checks out, so
an interrupted run leaves a partial file that the next run resumes with an HTTP ``Range`` request.
:func:`download_ravdess` fetches the official ``Audio_Speech_Actors_01-24.zip`` from Zenodo, verifies it and
unpacks it; :func:`resolve_ravdess` decides which RAVDESS copy a command uses.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from voxemo.core.errors import ConfigError, CorpusError, DownloadError
from voxemo.corpus.base import check_zip_limits
from voxemo.corpus.ravdess import N_CLIPS, RAVDESS_EXTENSIONS, parse_ravdess_name, unpack_zip

log = logging.getLogger(__name__)

RAVDESS_URL = "https://zenodo.org/records/1188976/files/Audio_Speech_Actors_01-24.zip?download=1"

RAVDESS_ZIP = "Audio_Speech_Actors_01-24.zip"

#: Size in bytes and MD5 of ``Audio_Speech_Actors_01-24.zip`` as published on Zenodo record 1188976.
RAVDESS_SIZE = 208_468_073

RAVDESS_MD5 = "bc696df654c87fed845eb13823edef8a"

#: Folder under the download directory that holds the unpacked ``Actor_XX/`` tree.
RAVDESS_DIR = "ravdess"

_USER_AGENT = "voxemo (+https://pypi.org/project/voxemo/)"

_CONTENT_RANGE = re.compile(r"^bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)$")

_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, OSError)


def default_data_dir() -> Path:
    """``$VOXEMO_HOME/data``, else ``$XDG_CACHE_HOME/voxemo/data``, else ``~/.cache/voxemo/data``."""
    if os.environ.get("VOXEMO_HOME"):
        return Path(os.environ["VOXEMO_HOME"]) / "data"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "voxemo" / "data"


def _parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """``(first byte, total size)`` from a ``Content-Range`` header; None for what it does not say."""
    m = _CONTENT_RANGE.match((value or "").strip())
    if not m:
        return None, None
    start, _, total = m.groups()
    return (int(start) if start is not None else None), (int(total) if total != "*" else None)


def _content_length(resp: http.client.HTTPResponse) -> int | None:
    value = resp.headers.get("Content-Length")
    return int(value) if value is not None and value.strip().isdigit() else None


def _start(url: str, offset: int, timeout: float,
           expected_size: int | None) -> tuple[http.client.HTTPResponse | None, int, int | None]:
    """Open ``url`` from byte ``offset``. Returns ``(response, offset, total size)``.

    The offset returned is where the response body starts: 0 when the server ignored the ``Range`` header.
    The response is None when the server says (HTTP 416) that the partial file already holds every byte.
    """
    headers = {"User-Agent": _USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            _, total = _parse_content_range(exc.headers.get("Content-Range"))
            exc.close()
            if total == offset or (total is None and expected_size == offset):
                return None, offset, offset
            return _start(url, 0, timeout, expected_size)  # the part file does not fit the file on the server
        hint = "check the URL" if 400 <= exc.code < 500 else "try again later; rerunning resumes"
        raise DownloadError(f"cannot download {url}: HTTP {exc.code} {exc.reason}; {hint}") from None
    except ValueError as exc:  # urllib's answer to a malformed URL
        raise DownloadError(f"cannot download {url}: {exc}") from None
    except _NETWORK_ERRORS as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise DownloadError(f"cannot download {url}: {reason}; check the network, rerunning resumes") from None
    if resp.status == 206:
        start, total = _parse_content_range(resp.headers.get("Content-Range"))
        if start != offset:
            resp.close()
            if offset:
                return _start(url, 0, timeout, expected_size)  # a range we did not ask for: fetch the whole file
            raise DownloadError(f"cannot download {url}: the server sent a partial answer to a full request")
        return resp, offset, total
    return resp, 0, _content_length(resp)


def _stream(resp: http.client.HTTPResponse, part: Path, offset: int, total: int | None, *, url: str,
            progress: bool, chunk_size: int) -> None:
    """Append the body of ``resp`` to ``part`` (truncated to ``offset`` bytes first)."""
    try:
        f = open(part, "r+b" if offset else "wb")
    except OSError as exc:
        resp.close()
        raise DownloadError(f"{part}: cannot write the download ({exc.strerror or exc})") from None
    with resp, f, tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                       desc=part.name.removesuffix(".part"), disable=not progress, leave=False) as bar:
        f.seek(offset)
        f.truncate()
        while True:
            try:
                chunk = resp.read(chunk_size)
            except _NETWORK_ERRORS as exc:
                raise DownloadError(f"download of {url} interrupted after {f.tell()} bytes ({exc}); "
                                    "rerun to resume") from None
            if not chunk:
                break
            try:
                f.write(chunk)
            except OSError as exc:
                raise DownloadError(f"{part}: cannot write the download ({exc.strerror or exc})") from None
            bar.update(len(chunk))


def download(url: str, dest: str | os.PathLike[str], *, expected_size: int | None = None, progress: bool = True,
             timeout: float = 60, chunk_size: int = 1 << 20) -> Path:
    """Download ``url`` to ``dest``, resuming an interrupted earlier attempt, and return ``dest``.

    Bytes go to ``<dest>.part``, which is renamed to ``dest`` once its size matches the server's
    (``Content-Length`` or the ``Content-Range`` total) and ``expected_size`` when given. A ``.part`` left by an
    interrupted run is resumed with an HTTP ``Range`` request; a server that ignores the range gets the whole
    file again. An existing ``dest`` (of ``expected_size`` bytes, when given) is returned without any request.

    Parameters
    ----------
    url : str
        HTTP(S) URL; redirects are followed.
    dest : path
        Final file path; its folder is created.
    expected_size : int, optional
        Size in bytes the file must have.
    progress : bool
        Show a tqdm progress bar (bytes).
    timeout : float
        Seconds to wait for the connection or for the next bytes.
    chunk_size : int
        Bytes read per step.

    Raises
    ------
    DownloadError
        On a network or HTTP error, or when the size does not verify. The message names the URL and says
        whether rerunning resumes.
    """
    if not isinstance(chunk_size, int) or chunk_size <= 0:
        raise ConfigError(f"chunk_size={chunk_size!r} must be a positive integer")
    if expected_size is not None and expected_size < 0:
        raise ConfigError(f"expected_size={expected_size!r} must be >= 0 bytes")
    dest = Path(dest)
    if dest.is_file() and (expected_size is None or dest.stat().st_size == expected_size):
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"{dest.parent}: cannot create the download folder ({exc.strerror or exc})") from None
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    if expected_size is not None and offset > expected_size:
        offset = 0  # longer than the file can be: not a prefix of it

    resp, offset, total = _start(url, offset, timeout, expected_size)
    if total is not None and expected_size is not None and total != expected_size:
        if resp is not None:
            resp.close()
        raise DownloadError(f"cannot download {url}: the server offers {total} bytes but {expected_size} were "
                            "expected; the URL is wrong or the file on the server changed")
    if resp is not None:
        _stream(resp, part, offset, total, url=url, progress=progress, chunk_size=chunk_size)

    size = part.stat().st_size
    if total is not None and size < total:
        raise DownloadError(f"download of {url} stopped after {size} of {total} bytes (connection closed); "
                            "rerun to resume")
    want = total if total is not None else expected_size
    if want is not None and size != want:
        part.unlink()
        raise DownloadError(f"download of {url} gave {size} bytes but {want} were expected; "
                            "the partial file was deleted, rerun to download it again")
    os.replace(part, dest)
    return dest


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)  # a checksum against corruption, not a security check
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def check_ravdess_zip(archive: str | os.PathLike[str], *, md5: str | None = None) -> None:
    """Check that ``archive`` is the RAVDESS speech zip: its MD5 when given, and its 1,440 audio-only speech clips.

    Without ``md5`` every member's CRC is checked instead, so a corrupted download is caught either way. A zip
    bomb (:func:`~voxemo.corpus.base.check_zip_limits`) is refused before any member is read.

    Raises
    ------
    DownloadError
        If the archive is unreadable, corrupted, a zip bomb, or does not hold exactly the 1,440 clips.
    """
    a = Path(archive)
    if md5 is not None and (actual := _md5(a)) != md5.lower():
        raise DownloadError(f"{a}: MD5 {actual} does not match the published {md5}")
    try:
        with zipfile.ZipFile(a) as zf:
            check_zip_limits(zf, a)
            members = [info for info in zf.infolist() if not info.is_dir()]
            bad = zf.testzip() if md5 is None else None
    except (zipfile.BadZipFile, OSError) as exc:
        raise DownloadError(f"{a}: not a readable zip archive ({exc})") from None
    except CorpusError as exc:
        raise DownloadError(str(exc)) from None
    if bad is not None:
        raise DownloadError(f"{a}: member {bad} is corrupted (CRC mismatch)")
    stems: set[str] = set()
    for info in members:
        member = PurePosixPath(info.filename)
        if member.suffix.lower() not in RAVDESS_EXTENSIONS or any(p.startswith(".") for p in member.parts):
            continue
        try:
            name = parse_ravdess_name(member)
        except CorpusError as exc:
            raise DownloadError(f"{a}: {exc}") from None
        if name.modality != "audio-only" or name.vocal_channel != "speech":
            raise DownloadError(f"{a}: {member} is a {name.modality} {name.vocal_channel} clip, not audio-only "
                                "speech; is this the right archive?")
        if member.stem in stems:
            raise DownloadError(f"{a}: clip {member.stem} occurs twice")
        stems.add(member.stem)
    if len(stems) != N_CLIPS:
        raise DownloadError(f"{a}: holds {len(stems)} RAVDESS speech clips, expected {N_CLIPS}")


def download_ravdess(dest_dir: str | os.PathLike[str], *, url: str = RAVDESS_URL, progress: bool = True,
                     expected_size: int | None = RAVDESS_SIZE, md5: str | None = RAVDESS_MD5) -> Path:
    """Download, verify and unpack the RAVDESS speech archive; return the folder :func:`load_ravdess` reads.

    The zip is saved as ``dest_dir/Audio_Speech_Actors_01-24.zip`` (resuming an interrupted download), checked
    with :func:`check_ravdess_zip`, unpacked to ``dest_dir/ravdess`` and then deleted. An existing
    ``dest_dir/ravdess`` is returned as is.

    Raises
    ------
    DownloadError
        If the download fails or the archive does not verify; a bad archive is renamed to ``<zip>.bad`` so
        that a rerun downloads it again.
    """
    dest_dir = Path(dest_dir)
    target = dest_dir / RAVDESS_DIR
    if target.is_dir() and any(target.iterdir()):
        return target
    archive = download(url, dest_dir / RAVDESS_ZIP, expected_size=expected_size, progress=progress)
    try:
        check_ravdess_zip(archive, md5=md5)
    except DownloadError as exc:
        bad = archive.with_name(archive.name + ".bad")
        os.replace(archive, bad)
        raise DownloadError(f"{exc}; moved to {bad}, rerun to download it again") from None
    try:
        unpack_zip(archive, target)
    except (CorpusError, OSError) as exc:
        raise DownloadError(f"{archive}: cannot unpack into {target} ({exc})") from None
    archive.unlink()  # the unpacked folder is the product; keeping the zip would double the disk use
    return target


#: where a copy of RAVDESS is looked for before downloading one (relative to the current folder): a project's
#: ``data/`` folder, and the layout of a checkout next to a shared data folder
LOCAL_COPIES = (Path("data") / RAVDESS_DIR, Path("..") / "shared" / "data" / RAVDESS_DIR)


def resolve_ravdess(data: str | os.PathLike[str] | None, *, download_if_missing: bool = True,
                    progress: bool = True) -> Path:
    """The RAVDESS copy a command should use.

    In order: ``data`` when given; else ``$VOXEMO_DATA``; else an earlier download in
    ``default_data_dir()/ravdess``; else a copy in :data:`LOCAL_COPIES`; else a fresh download there (when
    ``download_if_missing``; if it fails, the error says how to point at a local copy).

    Raises
    ------
    CorpusError
        If ``data`` or ``$VOXEMO_DATA`` names a missing path, or no copy exists and ``download_if_missing`` is
        False.
    DownloadError
        If the download fails.
    """
    if data is not None and str(data) != "":
        path = Path(data).expanduser()
        if not path.exists():
            raise CorpusError(f"{path}: no such file or folder; pass the RAVDESS folder or {RAVDESS_ZIP}")
        return path
    if os.environ.get("VOXEMO_DATA"):
        path = Path(os.environ["VOXEMO_DATA"]).expanduser()
        if not path.exists():
            raise CorpusError(f"{path} (from $VOXEMO_DATA): no such file or folder; fix or unset VOXEMO_DATA")
        return path
    base = default_data_dir()
    target = base / RAVDESS_DIR
    for found in (target, *LOCAL_COPIES):
        if found.is_dir() and any(found.iterdir()):
            if found != target:
                log.info("RAVDESS: using the copy in %s (--data or $VOXEMO_DATA choose another)", found)
            return found
    if not download_if_missing:
        raise CorpusError(f"RAVDESS not found in {target}: pass --data with the RAVDESS folder or {RAVDESS_ZIP}, "
                          "set VOXEMO_DATA, or run `voxemo download ravdess`")
    try:
        return download_ravdess(base, progress=progress)
    except DownloadError as exc:  # offline: say how to use a copy at hand instead
        raise DownloadError(f"{exc}; or use a local copy: --data DIR (the RAVDESS folder or {RAVDESS_ZIP}) or "
                            "$VOXEMO_DATA") from None
