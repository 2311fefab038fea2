"""OpenAI's `cl100k_base` (GPT-4) and `o200k_base` (GPT-4o) vocabularies for
`Tokenizer.cl100k()` and `Tokenizer.o200k()`: their rank files, split patterns and special
tokens, as tiktoken defines them.

The rank files (OpenAI's, MIT licensed; 1.7 and 3.6 MB) are not shipped in the package:
they are fetched on first use from the public URLs tiktoken itself uses
(`tiktoken_ext/openai_public.py`) into a cache folder (`$BPELM_CACHE_DIR`, else
`$XDG_CACHE_HOME/bpelm`, else `~/.cache/bpelm`; in its `tiktoken/` subfolder), and used only
when their sha256 equals the hash pinned here (tiktoken's `expected_hash`, of the plain,
unzipped file). A file passed as `path=` (plain or gzipped) is used instead of the download,
and is checked against the same hash.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from bpelm._files import write_atomic
from bpelm.tokenizer.tiktoken_ranks import gunzip_if_gzipped, read_rank_bytes

PathLike = Union[str, "os.PathLike[str]"]

CACHE_ENV = "BPELM_CACHE_DIR"
ENDOFTEXT = "<|endoftext|>"
FIM_PREFIX = "<|fim_prefix|>"
FIM_MIDDLE = "<|fim_middle|>"
FIM_SUFFIX = "<|fim_suffix|>"
ENDOFPROMPT = "<|endofprompt|>"


@dataclass(frozen=True)
class Preset:
    """One of tiktoken's encodings: where its ranks come from and how it splits text."""

    name: str  # tiktoken's name, also the cached file's: NAME.tiktoken
    pattern: str  # bpelm's name for the split pattern
    url: str
    sha256: str  # of the plain (unzipped) rank file: tiktoken's expected_hash
    special_tokens: dict[str, int]
    n_vocab: int  # tiktoken's n_vocab: the highest id + 1 (some ids below it are unused)


PRESETS: dict[str, Preset] = {
    "cl100k": Preset(
        name="cl100k_base",
        pattern="cl100k",
        url="https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        sha256="223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        special_tokens={
            ENDOFTEXT: 100257,
            FIM_PREFIX: 100258,
            FIM_MIDDLE: 100259,
            FIM_SUFFIX: 100260,
            ENDOFPROMPT: 100276,
        },
        n_vocab=100277,
    ),
    "o200k": Preset(
        name="o200k_base",
        pattern="o200k",
        url="https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        sha256="446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        special_tokens={ENDOFTEXT: 199999, ENDOFPROMPT: 200018},
        n_vocab=200019,
    ),
}


def cache_dir() -> Path:
    """bpelm's cache folder: `$BPELM_CACHE_DIR`, else `$XDG_CACHE_HOME/bpelm`, else
    `~/.cache/bpelm`."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "bpelm"


def cached_path(preset: Preset) -> Path:
    """Where the downloaded rank file of `preset` is kept."""
    return cache_dir() / "tiktoken" / f"{preset.name}.tiktoken"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def rank_file_bytes(
    preset: Preset,
    path: PathLike | None = None,
    *,
    timeout: float = 30.0,
    log: Callable[[str], None] = _stderr,
) -> bytes:
    """The plain bytes of `preset`'s rank file, after checking their sha256: from `path`
    (plain or gzipped; ValueError when the hash differs), else from the cache, else
    downloaded into the cache (`bpelm.download.DownloadError` when the download fails or
    its hash differs; nothing is left in the cache then)."""
    if path is not None:
        data = read_rank_bytes(path)
        digest = hashlib.sha256(data).hexdigest()
        if digest != preset.sha256:
            raise ValueError(
                f"{path}: not the {preset.name} rank file: its sha256 (unzipped) is {digest}, "
                f"expected {preset.sha256}"
            )
        return data
    cached = cached_path(preset)
    if cached.is_file():
        data = cached.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest == preset.sha256:
            return data
        log(f"{cached}: sha256 {digest} is not the pinned {preset.sha256}; downloading it again")
    return _download(preset, cached, timeout=timeout, log=log)


def _download(preset: Preset, dest: Path, *, timeout: float, log: Callable[[str], None]) -> bytes:
    # Imported here: only a first use of a preset needs urllib and the download helpers.
    from bpelm.download import DownloadError, fetch_bytes

    log(f"downloading {preset.url} -> {dest} (once; sha256-checked)")
    raw = fetch_bytes(preset.url, dest.parent, timeout=timeout, progress=sys.stderr.isatty())
    try:
        data = gunzip_if_gzipped(raw, preset.url)
    except ValueError as e:
        raise DownloadError(str(e)) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != preset.sha256:
        raise DownloadError(
            f"{preset.url}: the download's sha256 is {digest}, expected {preset.sha256} (a "
            "proxy or a changed file?); nothing was kept. Download it yourself and pass "
            "path=, which is checked against the same hash"
        )
    write_atomic(dest, data)
    return data
