"""`bpelm download` against local servers and a fake `huggingface_hub` only: offline failure,
Range resume, published, pinned and first-use checksums, gzip."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import socket
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path

import bpelm.download
import pytest
from bpelm.cli import main
from bpelm.download import DownloadError, download_dataset, fetch

TS_TRAIN, TS_VALID = "TinyStoriesV2-GPT4-train.txt", "TinyStoriesV2-GPT4-valid.txt"


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


def test_no_decompress_keeps_only_the_gz(tmp_path: Path, capsys) -> None:
    text = b"web page text<|endoftext|>\n" * 50
    base = file_mirror(
        tmp_path,
        {"owt_train.txt.gz": gzip.compress(text), "owt_valid.txt.gz": gzip.compress(text[:27])},
    )
    out = tmp_path / "out"
    assert main(["download", "owt", "--out", str(out), "--base-url", base, "--no-decompress"]) == 0
    assert "ready: " + str(out / "owt_train.txt.gz") in capsys.readouterr().out
    assert not list(out.glob("*.txt"))
    assert gzip.decompress((out / "owt_train.txt.gz").read_bytes()) == text


def test_missing_remote_file_names_the_url(tmp_path: Path, server: RangeServer) -> None:
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_dataset("owt", tmp_path, base_url=server.url, progress=False, log=lambda _: None)


@pytest.mark.parametrize("through", ["urllib", "hub"])
def test_a_resolver_that_never_answers_fails_fast(
    through: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = "huggingface.co" if through == "urllib" else "127.0.0.1"  # the fake hub's endpoint
    install_hub(monkeypatch, FakeHub({}) if through == "hub" else None)
    # A machine without network can leave name lookups hanging; simulate that without any DNS.
    monkeypatch.setattr("bpelm.download.socket.getaddrinfo", lambda *a, **k: time.sleep(60))
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match=f"no answer resolving {host} within 0.5 s"):
        download_dataset("tinystories", tmp_path, timeout=0.5, progress=False, log=lambda _: None)
    assert time.monotonic() - t0 < 30


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FakeHub(types.ModuleType):
    """The parts of `huggingface_hub` bpelm uses, serving `files` from memory; `published`
    maps a name to the sha256 the fake hub publishes for it (absent: not in LFS)."""

    def __init__(self, files: dict[str, bytes], published: dict[str, str] | None = None) -> None:
        super().__init__("huggingface_hub")
        self.files = files
        self.published = (
            {n: sha256(b) for n, b in files.items()} if published is None else published
        )
        self.downloads: list[str] = []
        self.offline = False
        # A numeric address: bpelm's look-up before each request needs no DNS.
        self.constants = types.SimpleNamespace(ENDPOINT="http://127.0.0.1:9")
        self.HfApi = lambda: types.SimpleNamespace(get_paths_info=self.get_paths_info)

    def get_paths_info(
        self, repo_id: str, paths: list[str], *, repo_type: str, revision: str
    ) -> list[types.SimpleNamespace]:
        assert repo_type == "dataset" and "/" in repo_id
        if self.offline:
            raise ConnectionError("no route to host")
        return [types.SimpleNamespace(path=p, lfs=self._lfs(p)) for p in paths if p in self.files]

    def _lfs(self, name: str) -> types.SimpleNamespace | None:
        digest = self.published.get(name)
        return None if digest is None else types.SimpleNamespace(sha256=digest)

    def hf_hub_download(
        self, repo_id: str, filename: str, *, repo_type: str, local_dir: Path, **_: object
    ) -> str:
        self.downloads.append(filename)
        dest = Path(local_dir) / filename
        dest.write_bytes(self.files[filename])
        return str(dest)


def install_hub(monkeypatch: pytest.MonkeyPatch, hub: FakeHub | None) -> None:
    """Make `import huggingface_hub` give `hub`, or fail as if not installed (None)."""
    monkeypatch.setitem(sys.modules, "huggingface_hub", hub)
    monkeypatch.delenv("BPELM_DOWNLOAD_BASE", raising=False)


def test_hub_files_must_match_the_published_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train, valid = b"a story<|endoftext|>\n" * 50, b"another<|endoftext|>\n"
    hub = FakeHub({TS_TRAIN: train, TS_VALID: valid})
    install_hub(monkeypatch, hub)
    messages: list[str] = []
    paths = download_dataset("tinystories", tmp_path, progress=False, log=messages.append)
    assert [p.read_bytes() for p in paths] == [train, valid]
    assert hub.downloads == [TS_TRAIN, TS_VALID]
    assert any("matches the sha256 127.0.0.1:9/datasets/roneneldan" in m for m in messages)
    assert not any("trust on first use" in m for m in messages)
    # A second run downloads nothing and checks the published hash again.
    download_dataset("tinystories", tmp_path, progress=False, log=messages.append)
    assert hub.downloads == [TS_TRAIN, TS_VALID]
    # A file damaged on disk is refused but left for the user to delete.
    paths[1].write_bytes(valid.upper())
    with pytest.raises(DownloadError, match=f"{TS_VALID}: sha256 {sha256(valid.upper())}"):
        download_dataset("tinystories", tmp_path, progress=False, log=lambda _: None)
    assert paths[1].exists()


def test_a_hub_download_with_another_hash_is_refused_and_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train, valid = b"the bytes served\n", b"valid\n"
    published = {TS_TRAIN: sha256(b"the bytes published\n"), TS_VALID: sha256(valid)}
    install_hub(monkeypatch, FakeHub({TS_TRAIN: train, TS_VALID: valid}, published))
    with pytest.raises(DownloadError) as caught:
        download_dataset("tinystories", tmp_path, progress=False, log=lambda _: None)
    message = str(caught.value)
    assert TS_TRAIN in message and published[TS_TRAIN] in message and sha256(train) in message
    assert "removed" in message
    assert not (tmp_path / TS_TRAIN).exists()
    assert not (tmp_path / (TS_TRAIN + ".sha256")).exists()


def file_mirror(tmp_path: Path, files: dict[str, bytes]) -> str:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name, body in files.items():
        (mirror / name).write_bytes(body)
    return mirror.as_uri() + "/"


def test_a_pinned_hash_is_checked_on_a_mirror(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train, valid = b"mirrored story\n" * 20, b"mirrored valid\n"
    base = file_mirror(tmp_path, {TS_TRAIN: train, TS_VALID: valid})
    out = tmp_path / "out"
    wrong = sha256(b"what the publisher shipped")
    monkeypatch.setitem(bpelm.download.PINNED_SHA256, TS_TRAIN, wrong)
    with pytest.raises(DownloadError) as caught:
        download_dataset("tinystories", out, base_url=base, progress=False, log=lambda _: None)
    assert wrong in str(caught.value) and sha256(train) in str(caught.value)
    assert "PINNED_SHA256" in str(caught.value)
    assert not (out / TS_TRAIN).exists()
    # The right pin is accepted and named in the log.
    monkeypatch.setitem(bpelm.download.PINNED_SHA256, TS_TRAIN, sha256(train))
    messages: list[str] = []
    download_dataset("tinystories", out, base_url=base, progress=False, log=messages.append)
    assert (out / TS_TRAIN).read_bytes() == train
    assert any(m.startswith(f"{TS_TRAIN}: sha256 matches") and "pinned" in m for m in messages)
    assert any(m.startswith(f"{TS_VALID}: no published checksum") for m in messages)


def test_a_pin_the_hub_contradicts_is_refused_before_downloading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = FakeHub({TS_TRAIN: b"new version\n", TS_VALID: b"v\n"})
    install_hub(monkeypatch, hub)
    monkeypatch.setitem(bpelm.download.PINNED_SHA256, TS_TRAIN, sha256(b"old version\n"))
    with pytest.raises(DownloadError, match="publishes sha256 .* but bpelm pins"):
        download_dataset("tinystories", tmp_path, progress=False, log=lambda _: None)
    assert hub.downloads == []


def test_without_the_hub_first_use_is_recorded_and_the_log_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_hub(monkeypatch, None)
    fetched: list[str] = []

    def fake_fetch(url: str, dest: Path, **_: object) -> Path:  # no network in tests
        fetched.append(url)
        dest.write_bytes(url.encode())
        return dest

    monkeypatch.setattr(bpelm.download, "fetch", fake_fetch)
    messages: list[str] = []
    download_dataset("tinystories", tmp_path, progress=False, log=messages.append)
    assert fetched[0] == bpelm.download.DATASETS["tinystories"].url + TS_TRAIN
    tofu = [m for m in messages if "no published checksum was checked" in m]
    assert len(tofu) == 2 and all("pip install 'bpelm[hub]'" in m for m in tofu)


def test_a_file_the_hub_publishes_no_hash_for_is_trusted_on_first_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train, valid = b"small file in git\n", b"v\n"
    hub = FakeHub({TS_TRAIN: train, TS_VALID: valid}, {TS_VALID: sha256(valid)})
    install_hub(monkeypatch, hub)
    messages: list[str] = []
    download_dataset("tinystories", tmp_path, progress=False, log=messages.append)
    assert any(
        m.startswith(f"{TS_TRAIN}: no published") and "not stored in LFS" in m for m in messages
    )
    assert (tmp_path / (TS_TRAIN + ".sha256")).read_text().split()[0] == sha256(train)
    # Offline later, downloaded files are still checked, against their sidecars.
    hub.offline = True
    messages.clear()
    download_dataset("tinystories", tmp_path, progress=False, log=messages.append)
    assert sum("could not read the published hash" in m for m in messages) == 2
    (tmp_path / TS_VALID).write_bytes(b"w\n")
    with pytest.raises(DownloadError, match="does not match"):
        download_dataset("tinystories", tmp_path, progress=False, log=lambda _: None)


def test_print_hashes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    gz = {"owt_train.txt.gz": gzip.compress(b"t"), "owt_valid.txt.gz": gzip.compress(b"v")}
    install_hub(monkeypatch, FakeHub(gz))
    assert main(["download", "owt", "--print-hashes", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name, body in gz.items():
        assert f'"{name}": "{sha256(body)}",' in out
    assert not list(tmp_path.iterdir())
    install_hub(monkeypatch, None)
    assert main(["download", "owt", "--print-hashes"]) == 1
    assert "pip install 'bpelm[hub]'" in capsys.readouterr().err
