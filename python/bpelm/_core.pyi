"""Type stubs for the Rust extension `bpelm._core` (see rust/src/py/)."""

from collections.abc import Collection
from os import PathLike
from typing import Literal

import numpy as np

__version__: str

_Path = str | PathLike[str]

# `num_threads`, wherever it is taken, follows one rule (checked in Rust, rust/src/pool.rs):
# None is one thread per CPU (or RAYON_NUM_THREADS where set); an int above 4 per CPU is
# capped there; 0 or a negative int raises ValueError("num_threads must be at least 1, or
# None for one thread per CPU; got N"); a bool, or anything without __index__ (a float, a
# str), raises TypeError("num_threads must be an int or None, not T"). Thread pools are kept
# for the two most recent sizes, and a forked child (multiprocessing, DataLoader workers)
# starts its own.

# `pattern`, wherever it is taken, is a split pattern: a name ("gpt2", "cl100k", "o200k", or
# tiktoken's "r50k_base", "p50k_base", "cl100k_base", "o200k_base"), or a regular expression
# (tiktoken's exact pattern strings select the built-in scanners; any other runs on
# fancy-regex, the slow path, and the text between two matches is kept as a pretoken of its
# own). An unknown name or a regex that cannot run: ValueError with the reason.

# -- pretokenization and corpus splitting (rust/src/py/pretok.rs) ------------------------

def split_pattern(spec: str) -> tuple[str | None, str]:
    """`(name, regex)` of the split pattern `spec` names or is (`name` None for a custom
    one; `regex` in tiktoken's spelling for a named one); ValueError for a bad one."""

def pretokenize(text: str, pattern: str = "gpt2") -> list[str]:
    """The pretokens of `text` by `pattern`."""

def vector_build() -> str:
    """Which build of the pretoken scanners runs on this processor: "avx2" (AVX2, BMI and
    LZCNT, found at run time) or "baseline" (SSE2); BPELM_NO_AVX2=1 in the environment keeps
    the baseline one. Both give the same pretokens."""

def split_special(text: str, special_tokens: list[str]) -> list[str | int]:
    """Text pieces and special-token indices, leftmost-longest matching."""

def chunk_ranges(
    text: str, special_tokens: list[str], target_bytes: int, pattern: str = "gpt2"
) -> list[tuple[int, int]]:
    """UTF-8 byte ranges of about `target_bytes` each, cut only where nothing can change."""

def safe_split_before(
    text: str, special_tokens: list[str], pos: int, pattern: str = "gpt2"
) -> int | None:
    """The greatest safe cut (UTF-8 byte offset) at or before `pos`, or None."""

def read_corpus(path: _Path) -> str:
    """A whole file, memory-mapped and checked as UTF-8 (errors name the byte offset)."""

# -- training (rust/src/py/train.rs) -------------------------------------------------------

def train_bpe(
    input_path: _Path,
    vocab_size: int,
    special_tokens: list[str],
    num_threads: int | None = None,
    progress: bool = False,
    pattern: str = "gpt2",
    window_bytes: int = ...,
) -> tuple[dict[int, bytes], list[tuple[bytes, bytes]]]:
    """Trains until `vocab_size` tokens (at most 2**32: ids are 32-bit) or no pair is left.
    A `.gz`/`.xz`/`.bz2` file is read `window_bytes` of text at a time. Ctrl-C stops it
    (`KeyboardInterrupt`); out of memory is `MemoryError`."""

def _learn_merges(
    word_counts: list[tuple[bytes, int]], n_merges: int
) -> list[tuple[bytes, bytes]]: ...

# -- encoding (rust/src/py/encode.rs) ------------------------------------------------------

def reads_str_storage() -> bool:
    """Whether str storage is read directly (else CPython's UTF-8 copy is used): only on 64-bit
    CPython 3.10-3.14 with the GIL, and never with BPELM_NO_STR_LAYOUT=1 in the environment."""

class EncodeFront:
    """The base class of `bpelm.Tokenizer`: its per-call encode methods, in Rust
    (rust/src/py/front.rs). The subclass provides `_core`, `_default_policy` and `_policy`;
    `allowed_special` / `disallowed_special` are tiktoken's (None: the default)."""

    def __new__(cls, *args: object, **kwargs: object) -> EncodeFront: ...
    @property
    def _policies(self) -> dict: ...
    def encode(
        self,
        text: str,
        *,
        allowed_special: Literal["all"] | Collection[str] | None = None,
        disallowed_special: Literal["all"] | Collection[str] | None = None,
    ) -> list[int]: ...
    def encode_to_array(
        self,
        text: str,
        *,
        allowed_special: Literal["all"] | Collection[str] | None = None,
        disallowed_special: Literal["all"] | Collection[str] | None = None,
    ) -> np.ndarray: ...
    def encode_ordinary(self, text: str) -> list[int]: ...

class CoreTokenizer:
    """Ids may leave gaps (tiktoken's special tokens do): `vocab_size` is the highest id + 1,
    `vocab()` omits unused ids, and decoding one raises KeyError."""

    def __init__(
        self,
        vocab: dict[int, bytes],
        merges: list[tuple[bytes, bytes]],
        special_tokens: list[str],
        pattern: str = "gpt2",
    ) -> None: ...
    @staticmethod
    def from_files(
        vocab_path: _Path, merges_path: _Path, special_tokens: list[str], pattern: str = "gpt2"
    ) -> CoreTokenizer: ...
    def save(self, vocab_path: _Path, merges_path: _Path) -> None: ...
    def with_specials(self, indices: list[int]) -> CoreTokenizer:
        """The same vocabulary and pattern matching only the special tokens at `indices`
        (into `special_tokens`); the others are ordinary text ([]: tiktoken's
        encode_ordinary). Shares the vocabulary and caches. An index out of range:
        ValueError."""
    def encode(self, text: str) -> list[int]:
        """Every special token of this core is matched (no check: see bpelm.Tokenizer)."""
    def encode_to_array(self, text: str) -> np.ndarray:
        """uint32 ids: for up to 4096 a copy, else an array owning the core's vector."""
    def encode_batch(self, texts: list[str], num_threads: int | None = None) -> list[list[int]]: ...
    def encode_batch_flat(
        self, texts: list[str], num_threads: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """uint32 ids of all texts concatenated, and int64 offsets (n + 1)."""
    def encode_prefix(self, text: str) -> tuple[list[int], int]:
        """Tokens of the longest prefix no later text can change, and its length in chars."""
    def decode_bytes(self, ids: list[int]) -> bytes: ...
    def vocab(self) -> dict[int, bytes]: ...
    def merges(self) -> list[tuple[bytes, bytes]]: ...
    @property
    def vocab_size(self) -> int: ...
    @property
    def pattern(self) -> str:
        """The split pattern's name, or the regex of a custom one."""
    @property
    def pattern_regex(self) -> str:
        """The split pattern's regex (tiktoken's spelling for a named one)."""
    @property
    def special_tokens(self) -> list[str]: ...
    @property
    def special_ids(self) -> list[int]: ...
    def token_id(self, token: bytes) -> int | None: ...

def encode_file(
    tokenizer: CoreTokenizer,
    input_path: _Path,
    output_path: _Path,
    dtype: str = "uint16",
    num_threads: int | None = None,
    progress: bool = False,
    chunk_bytes: int = ...,
    window_bytes: int = ...,
) -> tuple[int, int]:
    """Encodes a UTF-8 file (plain, or `.gz`/`.xz`/`.bz2`, read `window_bytes` of text at a
    time) to a .npy or .bin token array with the tokenizer's own pattern; returns (tokens,
    bytes of text)."""

def merges_from_ranks(ranks: dict[bytes, int], strict: bool = True) -> list[tuple[bytes, bytes]]:
    """The merges, in rank order, that make the tokens of tiktoken ranks; with `strict`,
    ValueError for a missing single byte or a token that is no merge of two lower ranks,
    else such tokens are left out."""

def parse_ranks(data: bytes, source: str) -> dict[bytes, int]:
    """`{token: rank}` from the text of a `.tiktoken` file; ValueError names the malformed
    line of `source`."""
