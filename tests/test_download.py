"""`bpelm download` against local servers only: offline failure, Range resume, checksums, gzip."""

from __future__ import annotations

import gzip
import http.server
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bpelm.cli import main
from bpelm.download import DownloadError, download_dataset, fetch


def closed_port() -> int:
    """A local port with nothing listening: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RangeServer(http.server.ThreadingHTTPServer):
    def __init__(self, files: dict[str, bytes]) -> None:
        super().__init__(("127.0.0.1", 0), RangeHandler)
        self.files = files
        self.ranges: list[str | None] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


class RangeHandler(http.server.BaseHTTPRequestHandler):
    server: RangeServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.server.files.get(self.path.lstrip("/"))
        if body is None:
            self.send_error(404)
            return
        spec = self.headers.get("Range")
        self.server.ranges.append(spec)
        start = int(spec.split("=")[1].rstrip("-")) if spec else 0
        if start >= len(body) and spec:
            self.send_error(416)
            return
        self.send_response(206 if spec else 200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:])

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[RangeServer]:
    srv = RangeServer({})
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_offline_fails_at_once_with_a_clear_message(tmp_path: Path, capsys) -> None:
    base = f"http://127.0.0.1:{closed_port()}/"
    t0 = time.monotonic()
    rc = main(["download", "tinystories", "--out", str(tmp_path), "--base-url", base])
    assert time.monotonic() - t0 < 30  # a refused connection must not hang
    assert rc == 1
    err = capsys.readouterr().err
    assert "cannot connect" in err and "TinyStoriesV2-GPT4-train.txt" in err and "offline" in err
    assert not list(tmp_path.glob("*.txt"))


def test_base_url_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BPELM_DOWNLOAD_BASE", f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(DownloadError, match="127.0.0.1"):
        download_dataset("owt", tmp_path, log=lambda _: None, progress=False)


def test_partial_download_resumes_with_range(tmp_path: Path, server: RangeServer) -> None:
    payload = bytes(range(256)) * 4000
    server.files["big.bin"] = payload
    dest = tmp_path / "big.bin"
    (tmp_path / "big.bin.part").write_bytes(payload[:300_000])
    fetch(server.url + "big.bin", dest, progress=False)
    assert dest.read_bytes() == payload
    assert server.ranges == ["bytes=300000-"]
    assert not (tmp_path / "big.bin.part").exists()


def test_checksum_recorded_then_verified(tmp_path: Path, server: RangeServer) -> None:
    train, valid = b"one story<|endoftext|>\n" * 100, b"another<|endoftext|>\n"
    server.files.update(
        {"TinyStoriesV2-GPT4-train.txt": train, "TinyStoriesV2-GPT4-valid.txt": valid}
    )
    messages: list[str] = []
    paths = download_dataset(
        "tinystories", tmp_path, base_url=server.url, progress=False, log=messages.append
    )
    assert [p.read_bytes() for p in paths] == [train, valid]
    assert any("no published checksum" in m for m in messages)
    sidecar = tmp_path / "TinyStoriesV2-GPT4-train.txt.sha256"
    assert sidecar.exists()
    # A second run downloads nothing and verifies.
    n_requests = len(server.ranges)
    messages.clear()
    download_dataset(
        "tinystories", tmp_path, base_url=server.url, progress=False, log=messages.append
    )
    assert len(server.ranges) == n_requests
    assert any("verified" in m for m in messages)
    # A corrupted file is caught.
    paths[0].write_bytes(train[:-1] + b"X")
    with pytest.raises(DownloadError, match="does not match"):
        download_dataset("tinystories", tmp_path, base_url=server.url, progress=False, log=print)


def test_gzipped_files_are_decompressed(tmp_path: Path, server: RangeServer) -> None:
    text = b"web page text<|endoftext|>\n" * 50
    server.files.update(
        {"owt_train.txt.gz": gzip.compress(text), "owt_valid.txt.gz": gzip.compress(text[:27])}
    )
    paths = download_dataset(
        "owt", tmp_path, base_url=server.url, progress=False, log=lambda _: None
    )
    assert [p.name for p in paths] == ["owt_train.txt", "owt_valid.txt"]
    assert paths[0].read_bytes() == text and paths[1].read_bytes() == text[:27]


def test_missing_remote_file_names_the_url(tmp_path: Path, server: RangeServer) -> None:
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_dataset("owt", tmp_path, base_url=server.url, progress=False, log=lambda _: None)


def test_a_resolver_that_never_answers_fails_fast(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A machine without network can leave name lookups hanging; simulate that without any DNS.
    monkeypatch.setattr("bpelm.download.socket.getaddrinfo", lambda *a, **k: time.sleep(60))
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match="no answer resolving huggingface.co within 0.5 s"):
        download_dataset("tinystories", tmp_path, timeout=0.5, progress=False, log=lambda _: None)
    assert time.monotonic() - t0 < 30
