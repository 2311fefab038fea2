"""Downloading the public training corpora: resumable, checksummed, decompressed.

Neither dataset publishes checksums, so the first complete download records the file's
sha256 in a `<file>.sha256` sidecar and later runs verify against it (trust on first use).
Small files whose hash is pinned in the code (tiktoken's rank files) come through
`fetch_bytes`, and are checked by their caller.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import shutil
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

BASE_URL_ENV = "BPELM_DOWNLOAD_BASE"
CHUNK = 1 << 20


class DownloadError(OSError):
    """A download that could not complete; the message says which URL and why."""


@dataclass(frozen=True)
class RemoteFile:
    name: str  # file name at the base URL and on disk
    gzipped: bool  # decompress to name without .gz after downloading


DATASETS: dict[str, tuple[str, list[RemoteFile]]] = {
    # Eldan & Li (2023), the GPT-4 generated version; about 2.1 GB + 22 MB.
    "tinystories": (
        "https://huggingface.co/datasets/roneneldan/TinyStories/resolve/main/",
        [
            RemoteFile("TinyStoriesV2-GPT4-train.txt", False),
            RemoteFile("TinyStoriesV2-GPT4-valid.txt", False),
        ],
    ),
    # The OpenWebText sample used by Stanford CS336; about 11 GB + 0.3 GB uncompressed.
    "owt": (
        "https://huggingface.co/datasets/stanford-cs336/owt-sample/resolve/main/",
        [RemoteFile("owt_train.txt.gz", True), RemoteFile("owt_valid.txt.gz", True)],
    ),
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
    except (urllib.error.URLError, socket.timeout, ConnectionError, OSError) as e:
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
            except (OSError, socket.timeout, http.client.HTTPException) as e:
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


def verify_or_record(path: Path, log: Callable[[str], None] = print) -> str:
    """Check `path` against its .sha256 sidecar, or write the sidecar when there is none."""
    sidecar = path.with_name(path.name + ".sha256")
    digest = sha256_file(path)
    if sidecar.exists():
        expected = sidecar.read_text().split()[0]
        if digest != expected:
            raise DownloadError(
                f"{path}: sha256 {digest} does not match {expected} recorded in {sidecar} at "
                "its first download; delete both files to download again"
            )
        log(f"{path.name}: sha256 verified against {sidecar.name}")
    else:
        sidecar.write_text(f"{digest}  {path.name}\n")
        log(
            f"{path.name}: no published checksum exists for this file; recorded sha256 "
            f"{digest[:16]}... in {sidecar.name} to verify future runs"
        )
    return digest


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
    log: Callable[[str], None] = print,
) -> list[Path]:
    """Download (or verify) every file of dataset `name` into `out_dir`; returns the text
    files. `base_url` (or $BPELM_DOWNLOAD_BASE) replaces the public URL, e.g. a mirror."""
    if name not in DATASETS:
        raise DownloadError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    default_base, files = DATASETS[name]
    base = base_url or os.environ.get(BASE_URL_ENV) or default_base
    if not base.endswith("/"):
        base += "/"
    out_dir.mkdir(parents=True, exist_ok=True)
    texts = []
    for remote in files:
        dest = out_dir / remote.name
        if dest.exists():
            log(f"{dest}: already downloaded")
        else:
            log(f"downloading {base}{remote.name} -> {dest}")
            fetch(base + remote.name, dest, timeout=timeout, progress=progress)
        verify_or_record(dest, log)
        if remote.gzipped:
            text = dest.with_suffix("")  # owt_train.txt.gz -> owt_train.txt
            if not text.exists():
                log(f"decompressing {dest} -> {text}")
                gunzip(dest, text)
            dest = text
        texts.append(dest)
    log("ready: " + ", ".join(str(p) for p in texts))
    return texts
