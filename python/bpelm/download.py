"""Downloading the public training corpora: resumable, checksummed, decompressed.

Every file is checked against the best sha256 there is, in this order:

1. `PINNED_SHA256`, a hash written into this module: checked whatever the source (the
   hub, a mirror, plain HTTP), so a changed or tampered file is refused;
2. the sha256 the Hugging Face Hub publishes for a file stored in LFS, read through
   `huggingface_hub` (the `bpelm[hub]` extra), which also does the transfer (resumable);
3. neither: trust on first use. The first complete download records the file's sha256 in
   a `<file>.sha256` sidecar, later runs verify against it, and the log says that no
   published hash was checked and why.

Small files whose hash is pinned in the code (tiktoken's rank files) come through
`fetch_bytes`, and are checked by their caller.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import importlib
import os
import shutil
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Protocol

BASE_URL_ENV = "BPELM_DOWNLOAD_BASE"
CHUNK = 1 << 20


class DownloadError(OSError):
    """A download that could not complete; the message says which URL and why."""


@dataclass(frozen=True)
class RemoteFile:
    name: str  # file name in the dataset repository and on disk
    gzipped: bool  # decompress to name without .gz after downloading


@dataclass(frozen=True)
class Dataset:
    repo_id: str  # the Hugging Face dataset repository
    files: tuple[RemoteFile, ...]
    revision: str = "main"

    @property
    def url(self) -> str:
        """The public base URL the files are fetched from without `huggingface_hub`."""
        return f"https://huggingface.co/datasets/{self.repo_id}/resolve/{self.revision}/"


DATASETS: dict[str, Dataset] = {
    # Eldan & Li (2023), the GPT-4 generated version; about 2.1 GB + 22 MB.
    "tinystories": Dataset(
        "roneneldan/TinyStories",
        (
            RemoteFile("TinyStoriesV2-GPT4-train.txt", False),
            RemoteFile("TinyStoriesV2-GPT4-valid.txt", False),
        ),
    ),
    # The OpenWebText sample used by Stanford CS336; about 11 GB + 0.3 GB uncompressed.
    "owt": Dataset(
        "stanford-cs336/owt-sample",
        (RemoteFile("owt_train.txt.gz", True), RemoteFile("owt_valid.txt.gz", True)),
    ),
}

# The sha256 of each file, checked on every path (hub, mirror, plain HTTP) when not empty.
# Empty: bpelm was built on a machine that cannot reach huggingface.co, so the values the
# hub publishes could not be read and copied here. To fill them, run on a connected machine
# with `pip install 'bpelm[hub]'`:
#     bpelm download tinystories --print-hashes && bpelm download owt --print-hashes
# which prints these lines with the hub's published values; paste them here.
PINNED_SHA256: dict[str, str] = {
    "TinyStoriesV2-GPT4-train.txt": "",
    "TinyStoriesV2-GPT4-valid.txt": "",
    "owt_train.txt.gz": "",
    "owt_valid.txt.gz": "",
}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _offline_error(url: str, reason: object) -> DownloadError:
    return DownloadError(
        f"{url}: cannot connect ({reason}). Is this machine offline? Download the file "
        f"elsewhere and place it in the output directory, or set ${BASE_URL_ENV} "
        "(--base-url) to a reachable mirror."
    )


def _resolve(url: str, timeout: float) -> None:
    """Look the host up in a daemon thread: a resolver that never answers (a machine without
    network) would otherwise block far longer than the socket timeout."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return  # file:// (a local mirror, the tests): nothing to look up
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    outcome: list[BaseException | None] = []

    def lookup() -> None:
        try:
            socket.getaddrinfo(host, port)
            outcome.append(None)
        except OSError as e:
            outcome.append(e)

    thread = threading.Thread(target=lookup, daemon=True)
    thread.start()
    thread.join(timeout)
    if not outcome:
        raise _offline_error(url, f"no answer resolving {host} within {timeout:g} s")
    if outcome[0] is not None:
        raise _offline_error(url, f"cannot resolve {host}: {outcome[0]}")


def _open(url: str, start: int, timeout: float):
    _resolve(url, timeout)
    request = urllib.request.Request(url, headers={"User-Agent": "bpelm-download"})
    if start:
        request.add_header("Range", f"bytes={start}-")
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416:  # range past the end: the .part file is already complete
            return None
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (TimeoutError, urllib.error.URLError, ConnectionError, OSError) as e:
        raise _offline_error(url, getattr(e, "reason", e)) from None


def fetch(url: str, dest: Path, *, timeout: float = 5.0, progress: bool = True) -> Path:
    """Download `url` to `dest`, continuing a previous partial `dest.part` with an HTTP
    Range request; the finished file is renamed into place."""
    from tqdm.auto import tqdm

    part = dest.with_name(dest.name + ".part")
    start = part.stat().st_size if part.exists() else 0
    response = _open(url, start, timeout)
    if response is None:
        part.replace(dest)
        return dest
    with response:
        if start and response.status != 206:
            start = 0  # the server ignored the Range header: start over
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        bar = tqdm(
            total=total,
            initial=start,
            unit="B",
            unit_scale=True,
            desc=dest.name,
            disable=not progress,
        )
        with open(part, "ab" if start else "wb") as f, bar:
            try:
                while chunk := response.read(CHUNK):
                    f.write(chunk)
                    bar.update(len(chunk))
            except (TimeoutError, OSError, http.client.HTTPException) as e:
                raise DownloadError(
                    f"{url}: connection lost after {f.tell():,} bytes ({e}); run the same "
                    "command again to continue where it stopped"
                ) from None
    if total is not None and part.stat().st_size != total:
        raise DownloadError(
            f"{url}: got {part.stat().st_size:,} of {total:,} bytes; run again to continue"
        )
    part.replace(dest)
    return dest


def fetch_bytes(
    url: str, scratch_dir: Path, *, timeout: float = 30.0, progress: bool = False
) -> bytes:
    """The bytes at `url`, downloaded with `fetch` through a temporary file in `scratch_dir`
    that is removed whatever happens (a small file is fetched again rather than resumed, so
    a failed or interrupted download leaves nothing behind)."""
    scratch_dir.mkdir(parents=True, exist_ok=True)
    name = urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1] or "download"
    tmp = scratch_dir / f".{name}.{os.getpid()}.download"
    part = tmp.with_name(tmp.name + ".part")
    try:
        fetch(url, tmp, timeout=timeout, progress=progress)
        return tmp.read_bytes()
    finally:
        tmp.unlink(missing_ok=True)
        part.unlink(missing_ok=True)


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def verify_or_record(
    path: Path,
    log: Callable[[str], None] = print,
    why: str = "no published checksum exists for this file",
) -> str:
    """Check `path` against its .sha256 sidecar, or write the sidecar when there is none
    (trust on first use); `why` says why no published hash could be checked instead."""
    sidecar = _sidecar(path)
    digest = sha256_file(path)
    if sidecar.exists():
        expected = sidecar.read_text().split()[0]
        if digest != expected:
            raise DownloadError(
                f"{path}: sha256 {digest} does not match {expected} recorded in {sidecar} at "
                "its first download; delete both files to download again"
            )
        log(
            f"{path.name}: sha256 verified against {sidecar.name}, recorded at its first "
            f"download (trust on first use: no published checksum was checked, {why})"
        )
    else:
        sidecar.write_text(f"{digest}  {path.name}\n")
        log(
            f"{path.name}: no published checksum was checked ({why}); recorded sha256 "
            f"{digest[:16]}... in {sidecar.name} to verify future runs (trust on first use)"
        )
    return digest


def check_sha256(
    path: Path, expected: str, origin: str, *, fresh: bool, log: Callable[[str], None] = print
) -> str:
    """Refuse `path` unless its sha256 is `expected` (`origin` says whose hash it is). A
    file just downloaded is removed on a mismatch, so no later run takes it for good; a
    file that was already there is the user's to delete."""
    digest = sha256_file(path)
    if digest != expected:
        if fresh:
            path.unlink()
            action = "the download was removed; run again to retry"
        else:
            action = f"delete {path} to download it again"
        raise DownloadError(
            f"{path}: sha256 {digest} does not match {expected}, {origin}; {action}"
        )
    # The sidecar lets a later run without network still tell a damaged file.
    _sidecar(path).write_text(f"{digest}  {path.name}\n")
    log(f"{path.name}: sha256 matches {origin}")
    return digest


class _Source(Protocol):
    no_hash_reason: str  # why no published hash is checked, when none is

    @property
    def where(self) -> str: ...  # for messages: where the files come from

    def locate(self, name: str) -> str: ...  # for messages: where `name` comes from

    def published_sha256(self, name: str) -> str | None: ...

    def download(self, name: str, dest: Path) -> None: ...


@dataclass
class _UrlSource:
    """Plain HTTP(S) or file:// with `fetch` (resumable); publishes no hashes."""

    base: str
    timeout: float
    progress: bool
    no_hash_reason: str

    @property
    def where(self) -> str:
        return self.base

    def locate(self, name: str) -> str:
        return self.base + name

    def published_sha256(self, name: str) -> str | None:
        return None

    def download(self, name: str, dest: Path) -> None:
        fetch(self.base + name, dest, timeout=self.timeout, progress=self.progress)


@dataclass
class _HubSource:
    """The Hugging Face Hub through `huggingface_hub`: its resumable download, and the
    sha256 it publishes for every file stored in LFS (all of these datasets' files)."""

    hub: ModuleType
    dataset: Dataset
    timeout: float
    no_hash_reason: str = "the hub publishes no sha256 for this file (it is not stored in LFS)"

    @property
    def where(self) -> str:
        host = self._endpoint().split("://")[-1].rstrip("/")  # $HF_ENDPOINT may be a mirror
        return f"{host}/datasets/{self.dataset.repo_id}"

    def locate(self, name: str) -> str:
        return f"{self.where}/{name} (huggingface_hub)"

    def _endpoint(self) -> str:
        """The hub's URL ($HF_ENDPOINT or huggingface.co), from `huggingface_hub.constants`,
        a submodule the package imports lazily."""
        constants = getattr(self.hub, "constants", None)
        if constants is None:
            constants = importlib.import_module(f"{self.hub.__name__}.constants")
        return getattr(constants, "ENDPOINT", "https://huggingface.co")

    def published_sha256(self, name: str) -> str | None:
        _resolve(self._endpoint(), self.timeout)  # offline: fail in seconds, not minutes
        try:
            infos = self.hub.HfApi().get_paths_info(
                self.dataset.repo_id, [name], repo_type="dataset", revision=self.dataset.revision
            )
        except Exception as e:  # requests or httpx errors, by the hub's version: all say why
            raise DownloadError(
                f"{self.where}/{name}: cannot read the hub's file information "
                f"({type(e).__name__}: {e})"
            ) from e
        info = next((i for i in infos if getattr(i, "path", None) == name), None)
        if info is None:
            raise DownloadError(f"{self.where}: has no file {name}")
        return _lfs_sha256(getattr(info, "lfs", None))

    def download(self, name: str, dest: Path) -> None:
        _resolve(self._endpoint(), self.timeout)
        try:
            got = self.hub.hf_hub_download(
                self.dataset.repo_id,
                name,
                repo_type="dataset",
                revision=self.dataset.revision,
                local_dir=dest.parent,  # the hub keeps partial downloads under .cache/ there
                etag_timeout=self.timeout,
            )
        except Exception as e:  # requests or httpx errors, by the hub's version: all say why
            raise DownloadError(
                f"{self.where}/{name}: download failed ({type(e).__name__}: {e}); run the "
                "same command again to continue where it stopped"
            ) from e
        if Path(got).resolve() != dest.resolve():
            os.replace(got, dest)


def _lfs_sha256(lfs: object) -> str | None:
    """The sha256 in a file's LFS information: an object with `.sha256` in recent
    `huggingface_hub` versions, a dict in older ones; None for a file not in LFS."""
    if lfs is None:
        return None
    if isinstance(lfs, dict):
        return lfs.get("sha256")
    return getattr(lfs, "sha256", None)


def _hub_module() -> ModuleType | None:
    """`huggingface_hub` when installed (the `bpelm[hub]` extra); imported only here, so
    `import bpelm` never loads it."""
    try:
        import huggingface_hub
    except ImportError:
        return None
    return huggingface_hub


def _source(dataset: Dataset, base_url: str | None, timeout: float, progress: bool) -> _Source:
    """A mirror when one is given; else the hub through `huggingface_hub` when installed;
    else plain HTTPS to the hub's public URLs."""
    mirror = base_url or os.environ.get(BASE_URL_ENV)
    if mirror:
        if not mirror.endswith("/"):
            mirror += "/"
        reason = f"the files come from the mirror {mirror}, which publishes no hashes"
        return _UrlSource(mirror, timeout, progress, reason)
    hub = _hub_module()
    if hub is None:
        reason = (
            "huggingface_hub is not installed; `pip install 'bpelm[hub]'` to check the "
            "sha256 huggingface.co publishes"
        )
        return _UrlSource(dataset.url, timeout, progress, reason)
    return _HubSource(hub, dataset, timeout)


def _expected_sha256(name: str, dest: Path, source: _Source) -> tuple[str | None, str]:
    """(the sha256 `name` must have, whose it is), or (None, why there is none). The pinned
    hash wins; the hub's must agree with it. An existing file is still checked offline."""
    pinned = PINNED_SHA256.get(name) or None
    try:
        published = source.published_sha256(name)
        reason = source.no_hash_reason
    except DownloadError as e:
        if not dest.exists():
            raise
        published, reason = None, f"could not read the published hash: {e}"
    if pinned and published and pinned != published:
        raise DownloadError(
            f"{name}: {source.where} publishes sha256 {published}, but bpelm pins {pinned} "
            "(PINNED_SHA256 in bpelm/download.py): the file changed after bpelm pinned it; "
            "refusing it"
        )
    if pinned:
        return pinned, "the sha256 pinned in bpelm (PINNED_SHA256)"
    if published:
        return published, f"the sha256 {source.where} publishes"
    return None, reason + ", and bpelm pins none"


def _obtain(remote: RemoteFile, dest: Path, source: _Source, log: Callable[[str], None]) -> None:
    """Download `remote` to `dest` unless it is there, then check it (or record it)."""
    expected, origin = _expected_sha256(remote.name, dest, source)
    fresh = not dest.exists()
    if fresh:
        log(f"downloading {source.locate(remote.name)} -> {dest}")
        source.download(remote.name, dest)
    else:
        log(f"{dest}: already downloaded")
    if expected is None:
        verify_or_record(dest, log, origin)
    else:
        check_sha256(dest, expected, origin, fresh=fresh, log=log)


def published_hashes(name: str, *, timeout: float = 5.0) -> dict[str, str | None]:
    """The sha256 the hub publishes for each file of dataset `name` (None: not in LFS), for
    filling `PINNED_SHA256`; needs `huggingface_hub` and the network."""
    hub = _hub_module()
    if hub is None:
        raise DownloadError(
            "reading the hashes the hub publishes needs huggingface_hub: pip install 'bpelm[hub]'"
        )
    source = _HubSource(hub, _dataset(name), timeout)
    return {f.name: source.published_sha256(f.name) for f in source.dataset.files}


def _dataset(name: str) -> Dataset:
    if name not in DATASETS:
        raise DownloadError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    return DATASETS[name]


def gunzip(src: Path, dest: Path) -> Path:
    """Stream-decompress `src` to `dest` via a temporary file."""
    tmp = dest.with_name(dest.name + ".tmp")
    with gzip.open(src, "rb") as fin, open(tmp, "wb") as fout:
        shutil.copyfileobj(fin, fout, CHUNK)
    tmp.replace(dest)
    return dest


def download_dataset(
    name: str,
    out_dir: Path,
    *,
    base_url: str | None = None,
    timeout: float = 5.0,
    progress: bool = True,
    decompress: bool = True,
    log: Callable[[str], None] = print,
) -> list[Path]:
    """Download (or verify) every file of dataset `name` into `out_dir`; returns the text
    files. `base_url` (or $BPELM_DOWNLOAD_BASE) replaces the public URL, e.g. a mirror.
    `decompress=False` keeps gzipped files as they are (the tokenizer reads .gz itself)."""
    dataset = _dataset(name)
    source = _source(dataset, base_url, timeout, progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    texts = []
    for remote in dataset.files:
        dest = out_dir / remote.name
        _obtain(remote, dest, source, log)
        if remote.gzipped and decompress:
            text = dest.with_suffix("")  # owt_train.txt.gz -> owt_train.txt
            if not text.exists():
                log(f"decompressing {dest} -> {text}")
                gunzip(dest, text)
            dest = text
        texts.append(dest)
    log("ready: " + ", ".join(str(p) for p in texts))
    return texts
