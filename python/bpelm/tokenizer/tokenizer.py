"""The byte-level BPE tokenizer: encode, decode, save and load, encode files to arrays.

`Tokenizer` is a thin policy layer over the Rust `CoreTokenizer` (argument checks, the
metadata file, streaming); the work itself runs in Rust with the GIL released.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Union

import numpy as np

from bpelm import _core
from bpelm._files import write_atomic
from bpelm.tokenizer import hf_json, presets, tiktoken_ranks
from bpelm.tokenizer import specials as _specials
from bpelm.tokenizer.specials import AllowedSpecial, DisallowedSpecial, check_special_tokens
from bpelm.tokenizer.token_files import write_bin_sidecar

PathLike = Union[str, "os.PathLike[str]"]

# The files of a saved tokenizer: GPT-2's two, and bpelm's metadata (version, special tokens,
# split pattern).
VOCAB_NAME = "vocab.json"
MERGES_NAME = "merges.txt"
METADATA_NAME = "bpelm.json"
# GPT-2's vocabulary, shipped in the package for `Tokenizer.gpt2()`.
GPT2_DIR = Path(__file__).parent / "data" / "gpt2"
# The defaults of `allowed_special` and `disallowed_special` (tiktoken's), named so that
# `encode` can recognise them by identity.
_NONE: tuple[str, ...] = ()
_ALL = "all"
# encode_iterable encodes and drops its buffer once it holds this many characters.
_FLUSH_CHARS = 1 << 20


def _unmade_tokens(core: _core.CoreTokenizer) -> list[str]:
    """The UTF-8 tokens of more than one byte that no merge of `core` makes, in id order."""
    made = {left + right for left, right in core.merges()}
    found = []
    for _, token in sorted(core.vocab().items()):
        if len(token) > 1 and token not in made:
            try:
                found.append(token.decode("utf-8"))
            except UnicodeDecodeError:
                continue  # not text, so not something a special token could be
    return found


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:3])


def _check_pattern(pattern: object) -> str:
    """`pattern` if it is a str (the core checks the rest, with the reason)."""
    if not isinstance(pattern, str):
        raise TypeError(
            f"pattern must be a str (gpt2, cl100k, o200k or a regular expression), "
            f"not {type(pattern).__name__}"
        )
    return pattern


def _read_metadata(meta: Path) -> dict:
    """bpelm.json: its special tokens (a list) and split pattern (a str; gpt2 when the key
    is absent, as in files written before patterns), checked."""
    try:
        metadata = json.loads(meta.read_text(encoding="utf-8"))
        version = metadata.get("bpelm_version")
    except (ValueError, AttributeError) as e:
        raise ValueError(f"{meta}: not a bpelm metadata file ({e})") from e
    _check_written_by(meta, version)  # first: a newer format may differ in what follows
    try:
        specials = metadata["special_tokens"]
        pattern = metadata.get("pattern", "gpt2")
        if not isinstance(specials, list) or not isinstance(pattern, str):
            raise TypeError("special_tokens must be a list and pattern a str")
    except (KeyError, TypeError) as e:
        raise ValueError(f"{meta}: not a bpelm metadata file ({e})") from e
    return {"special_tokens": specials, "pattern": pattern}


def _check_written_by(meta: Path, version: object) -> None:
    """Refuses metadata written by a newer bpelm, whose format this one may not know."""
    try:
        written = _version_tuple(str(version))
        ours = _version_tuple(_core.__version__)
    except ValueError:
        raise ValueError(f"{meta}: bpelm_version {version!r} is not a version number") from None
    if written[:2] > ours[:2]:
        raise ValueError(
            f"{meta}: written by bpelm {version}, newer than this bpelm {_core.__version__}; "
            "upgrade bpelm to load it"
        )


class Tokenizer(_core.EncodeFront):
    """A byte-level BPE tokenizer: `vocab` maps ids to token bytes (0..n-1, or with unused
    ids between, as tiktoken's special tokens leave), `merges` lists (left, right) byte
    pairs in rank order; special tokens missing from `vocab` get the next ids.

    `pattern` splits text into pretokens before the merges: "gpt2" (GPT-2's pattern, the
    default), "cl100k" (GPT-4's `cl100k_base`), "o200k" (GPT-4o's `o200k_base`) (tiktoken's
    names and exact pattern strings are accepted too), or any other regular expression,
    which runs on fancy-regex: the slow path, and unlike tiktoken the text between two
    matches is kept as a pretoken of its own rather than dropped. An unknown name or a
    regex that cannot run: ValueError giving the reason.

    Special tokens follow tiktoken (same parameters, same defaults): `encode` and friends
    raise `ValueError` on text that spells a special token unless `allowed_special` names
    it (then it becomes its id, longest match first) or `disallowed_special` leaves it out
    (then it is ordinary text); `encode_ordinary` never matches them. The one difference,
    on purpose: `encode_file` (training corpora) allows every special token by default,
    since there they separate documents.
    """

    def __init__(
        self,
        vocab: dict[int, bytes],
        merges: list[tuple[bytes, bytes]],
        special_tokens: list[str] | None = None,
        pattern: str = "gpt2",
    ) -> None:
        if not isinstance(vocab, dict):
            raise TypeError(f"vocab must be a dict[int, bytes], not {type(vocab).__name__}")
        merges = [tuple(m) if isinstance(m, list) else m for m in merges]
        self._core = _core.CoreTokenizer(
            vocab, merges, check_special_tokens(special_tokens), _check_pattern(pattern)
        )

    @classmethod
    def _wrap(cls, core: _core.CoreTokenizer) -> Tokenizer:
        tok = cls.__new__(cls)
        tok._core = core
        return tok

    @classmethod
    def from_files(
        cls,
        vocab_path: PathLike,
        merges_path: PathLike,
        special_tokens: list[str] | None = None,
        pattern: str | None = None,
    ) -> Tokenizer:
        """Loads GPT-2 style `vocab.json` + `merges.txt`.

        A `bpelm.json` beside `vocab.json` (what `save` writes) gives the special tokens
        and the split pattern (gpt2 when it records none). `pattern=None` takes the recorded
        one (gpt2 without a `bpelm.json`); a different pattern than the recorded one is a
        ValueError naming both, since the merges were learned on that pattern's pretokens.

        Without `special_tokens` and without a `bpelm.json` (GPT-2's own files), the rule
        is: a token of `vocab.json` longer than one byte that no merge makes is a special
        token (GPT-2's "<|endoftext|>"), as it can only ever be produced by special-token
        matching. So `token_to_id` and `encode` agree: such a token is in `special_tokens`,
        and text spelling it is refused or encoded as its id, as tiktoken's `gpt2` does.
        """
        meta = Path(vocab_path).parent / METADATA_NAME
        metadata = _read_metadata(meta) if meta.exists() else None
        if pattern is not None:
            _check_pattern(pattern)
        if metadata is not None:
            recorded = metadata["pattern"]
            try:
                recorded_spec = _core.split_pattern(recorded)
            except ValueError as e:
                raise ValueError(f"{meta}: split pattern {recorded!r}: {e}") from None
            same = pattern is None or _core.split_pattern(pattern) == recorded_spec
            if not same:
                raise ValueError(
                    f"pattern={pattern!r} differs from the split pattern {recorded!r} recorded "
                    f"in {meta}, which the merges were learned with; pass pattern=None to use "
                    "the recorded one"
                )
            pattern = recorded
            if special_tokens is None:
                special_tokens = metadata["special_tokens"]
        if pattern is None:
            pattern = "gpt2"
        files = (os.fspath(vocab_path), os.fspath(merges_path))
        if special_tokens is None:
            core = _core.CoreTokenizer.from_files(*files, [], pattern)
            unmade = _unmade_tokens(core)
            if not unmade:
                return cls._wrap(core)
            special_tokens = unmade
        specials = check_special_tokens(special_tokens)
        return cls._wrap(_core.CoreTokenizer.from_files(*files, specials, pattern))

    @classmethod
    def gpt2(cls) -> Tokenizer:
        """GPT-2's tokenizer, from the copy of its files shipped in the package (OpenAI,
        MIT licensed; see `tokenizer/data/gpt2/NOTICE.md`): the ids of tiktoken's `gpt2`
        encoding, with "<|endoftext|>" (50256) as its special token. No download."""
        # The special token named, which is what `from_files`'s rule finds (tested), without
        # the second load the rule needs.
        return cls.from_files(
            GPT2_DIR / VOCAB_NAME, GPT2_DIR / MERGES_NAME, ["<|endoftext|>"], pattern="gpt2"
        )

    @classmethod
    def cl100k(cls, path: PathLike | None = None) -> Tokenizer:
        """GPT-4's `cl100k_base`: the ids of tiktoken's encoding of that name, its split
        pattern ("cl100k") and special tokens with their ids ("<|endoftext|>" 100257,
        "<|fim_prefix|>" 100258, "<|fim_middle|>" 100259, "<|fim_suffix|>" 100260,
        "<|endofprompt|>" 100276; ids 100256 and 100261-100275 are unused, so `vocab_size`
        is tiktoken's n_vocab, 100277).

        The rank file (OpenAI's, MIT licensed) is not shipped: on first use it is
        downloaded from OpenAI's public URL (the one tiktoken uses) into
        `$BPELM_CACHE_DIR/tiktoken/` (else `$XDG_CACHE_HOME/bpelm/tiktoken/`, else
        `~/.cache/bpelm/tiktoken/`), and used only when its sha256 is tiktoken's pinned
        one. `path`: a copy of `cl100k_base.tiktoken` (plain or gzipped) to use instead,
        with no download; checked against the same hash (ValueError naming the file, the
        expected and the actual hash)."""
        return cls._preset("cl100k", path)

    @classmethod
    def o200k(cls, path: PathLike | None = None) -> Tokenizer:
        """GPT-4o's `o200k_base`: the ids of tiktoken's encoding of that name, its split
        pattern ("o200k") and special tokens with their ids ("<|endoftext|>" 199999,
        "<|endofprompt|>" 200018; the ids between are unused, so `vocab_size` is
        tiktoken's n_vocab, 200019). The rank file comes as for `cl100k` (downloaded once
        into the cache and checked against tiktoken's pinned sha256, or `path=`, plain or
        gzipped, checked against the same hash)."""
        return cls._preset("o200k", path)

    @classmethod
    def _preset(cls, name: str, path: PathLike | None) -> Tokenizer:
        preset = presets.PRESETS[name]
        data = presets.rank_file_bytes(preset, path)
        ranks = tiktoken_ranks.parse_ranks(data, path or presets.cached_path(preset))
        return cls._from_ranks(ranks, preset.special_tokens, preset.pattern)

    @classmethod
    def load(cls, directory: PathLike) -> Tokenizer:
        """The tokenizer `save(directory)` wrote: DIR/vocab.json, merges.txt and bpelm.json
        (GPT-2's own two files load too, without specials)."""
        d = Path(directory)
        if not d.is_dir():
            raise FileNotFoundError(f"{d}: not a tokenizer directory")
        vocab, merges = d / VOCAB_NAME, d / MERGES_NAME
        for p in (vocab, merges):
            if not p.is_file():
                raise FileNotFoundError(
                    f"{p}: not found (is {d} a directory written by Tokenizer.save or "
                    "`bpelm tokenizer train`?)"
                )
        return cls.from_files(vocab, merges)

    def save(self, vocab_path: PathLike, merges_path: PathLike | None = None) -> None:
        """`save(DIR)`: writes DIR/vocab.json, merges.txt and bpelm.json (DIR is created if
        missing). `save(VOCAB, MERGES)`: those two paths, with bpelm.json beside VOCAB.
        bpelm.json records the special tokens and the split pattern, which `load` and
        `from_files` restore."""
        if merges_path is None:
            directory = Path(vocab_path)
            directory.mkdir(parents=True, exist_ok=True)
            vocab_path, merges_path = directory / VOCAB_NAME, directory / MERGES_NAME
        self._core.save(os.fspath(vocab_path), os.fspath(merges_path))
        meta = {
            "bpelm_version": _core.__version__,
            "special_tokens": self.special_tokens,
            "pattern": self.pattern,
        }
        write_atomic(Path(vocab_path).parent / METADATA_NAME, json.dumps(meta, indent=2) + "\n")

    # -- other libraries' files ----------------------------------------------------------------

    @classmethod
    def from_hf_json(cls, path: PathLike) -> Tokenizer:
        """Loads a HuggingFace `tokenizer.json` of a byte-level BPE model (GPT-2's kind);
        its `added_tokens` become the special tokens, keeping their ids. The split pattern
        is GPT-2's for a `ByteLevel` pre-tokenizer that splits, or the regex of a `Split`
        (isolated matches) followed by a `ByteLevel` that does not, the form `save_hf_json`
        writes for other patterns."""
        vocab, merges, specials, pattern = hf_json.read(path)
        return cls(vocab, merges, specials, pattern)

    def save_hf_json(self, path: PathLike) -> None:
        """Writes a HuggingFace `tokenizer.json` (`tokenizers.Tokenizer.from_file` loads it
        and gives the same ids, special tokens matched as `encode(allowed_special="all")`).

        GPT-2's pattern is `ByteLevel`'s own; another pattern is written as
        `Sequence[Split(Regex=<the pattern>, behavior="Isolated"), ByteLevel(use_regex=false)]`,
        which `tokenizers` runs on Oniguruma (Ruby syntax): cl100k and o200k give the same ids
        there (tested on the sample corpora, every code point and random text); a custom
        regex is written as given, and must mean the same in Oniguruma's syntax (`X{n,m}+`,
        possessive in bpelm and tiktoken, is a repetition there)."""
        hf_json.write(
            path,
            hf_json.to_json(
                dict(self.vocab),
                self.merges,
                self._special_map(),
                self.pattern,
            ),
        )

    @classmethod
    def from_tiktoken(
        cls,
        path: PathLike,
        special_tokens: Mapping[str, int] | Sequence[str] | None = None,
        *,
        pattern: str = "gpt2",
    ) -> Tokenizer:
        """Loads a tiktoken rank file (`.tiktoken`: base64 token, rank; plain or gzipped,
        told by its first bytes): ranks are the ids, and the merges are derived from them as
        tiktoken's BPE applies them. `special_tokens`: a {token: id} dict as tiktoken takes
        (its ids may leave gaps, as tiktoken's do), or a list (next ids). The file records
        no split pattern: give it as `pattern` (e.g. "cl100k" for `cl100k_base.tiktoken`;
        `Tokenizer.cl100k()` and `Tokenizer.o200k()` do all of this)."""
        _check_pattern(pattern)
        return cls._from_ranks(tiktoken_ranks.read_ranks(path), special_tokens, pattern)

    @classmethod
    def _from_ranks(
        cls,
        ranks: dict[bytes, int],
        special_tokens: Mapping[str, int] | Sequence[str] | None,
        pattern: str,
    ) -> Tokenizer:
        merges = tiktoken_ranks.merges_from_ranks(ranks)
        vocab = {rank: token for token, rank in ranks.items()}
        if isinstance(special_tokens, Mapping):
            for token, token_id in special_tokens.items():
                raw = token.encode("utf-8")
                if vocab.get(int(token_id), raw) != raw:
                    raise ValueError(
                        f"special token {token!r}: id {token_id} is the rank of "
                        f"{vocab[int(token_id)]!r}"
                    )
                vocab[int(token_id)] = raw
            specials = sorted(special_tokens, key=lambda t: special_tokens[t])
        else:
            specials = check_special_tokens(special_tokens)
        return cls(vocab, merges, specials, pattern)

    def save_tiktoken(self, path: PathLike) -> None:
        """Writes the ordinary tokens as a tiktoken rank file (special tokens are not part
        of that format: pass `special_tokens_map` to tiktoken or `from_tiktoken`; nor is the
        split pattern: give tiktoken `pattern_regex` as `pat_str`, and `from_tiktoken`
        `pattern`)."""
        special_ids = set(self._special_map().values())
        ranks = {token: i for i, token in self.vocab.items() if i not in special_ids}
        tiktoken_ranks.write_ranks(path, ranks)

    @property
    def pattern(self) -> str:
        """The split pattern: its name ("gpt2", "cl100k", "o200k"), or the regular
        expression of any other."""
        return self._core.pattern

    @property
    def pattern_regex(self) -> str:
        """The split pattern's regular expression: what tiktoken's `pat_str` takes (for
        cl100k and o200k tiktoken's own strings; for GPT-2 the spelling of tiktoken's
        earlier releases, equivalent to today's)."""
        return self._core.pattern_regex

    @property
    def special_tokens_map(self) -> dict[str, int]:
        """Special token -> id (tiktoken's `special_tokens` argument)."""
        return self._special_map()

    def _special_map(self) -> dict[str, int]:
        return dict(zip(self._core.special_tokens, self._core.special_ids))

    # -- encoding ---------------------------------------------------------------------------

    def _core_for(self, allowed: tuple[int, ...]) -> _core.CoreTokenizer:
        """The core that matches only the special tokens at indices `allowed` (all of them:
        this tokenizer's own core, the fast path; the others are made once and kept)."""
        if len(allowed) == len(self._core.special_tokens):
            return self._core
        cores = self.__dict__.setdefault("_special_cores", {})
        core = cores.get(allowed)
        if core is None:
            core = cores[allowed] = self._core.with_specials(list(allowed))
        return core

    @functools.cached_property
    def _default_policy(self) -> tuple[_core.CoreTokenizer, tuple[str, ...]]:
        """tiktoken's defaults: every special token is disallowed. A text that passes that
        check holds no special token, so the full core gives it the same ids as the ordinary
        one, and it is the faster of the two per call (0.60 against 0.76 us on a sentence).
        `EncodeFront` asks for it once and keeps it."""
        _, disallowed = self._policy(_NONE, _ALL)
        assert set(disallowed) == set(self._core.special_tokens)
        return (self._core, disallowed)

    def _policy(
        self, allowed_special: AllowedSpecial, disallowed_special: DisallowedSpecial
    ) -> tuple[_core.CoreTokenizer, tuple[str, ...]]:
        """The core to encode with, and the special tokens text may not contain; kept per
        (hashable) pair of arguments, so a call with the defaults costs one dict lookup."""
        key = (allowed_special, disallowed_special)
        try:
            return self._policies[key]
        except KeyError:
            pass
        except TypeError:  # a set: not hashable, so not kept (a frozenset is)
            key = None
        specials = self._core.special_tokens
        if specials:
            allowed, disallowed = _specials.resolve(specials, allowed_special, disallowed_special)
            policy = (self._core_for(allowed), disallowed)
        else:
            policy = (self._core, ())
        if key is not None:
            self._policies[key] = policy
        return policy

    # `encode`, `encode_ordinary` and `encode_to_array` are `_core.EncodeFront`'s: a call
    # goes from Python straight into Rust (see rust/src/py/front.rs).

    def encode_batch(
        self,
        texts: Sequence[str],
        num_threads: int | None = None,
        *,
        allowed_special: AllowedSpecial = (),
        disallowed_special: DisallowedSpecial = "all",
    ) -> list[list[int]]:
        """Encodes each text in parallel (all cores by default), keeping the order; special
        tokens as in `encode` (the error names the first text that spells one)."""
        texts = self._check_batch(texts, "encode_batch")
        core = self._checked_batch_core(texts, allowed_special, disallowed_special)
        return core.encode_batch(texts, num_threads)

    def encode_batch_flat(
        self,
        texts: Sequence[str],
        num_threads: int | None = None,
        *,
        allowed_special: AllowedSpecial = (),
        disallowed_special: DisallowedSpecial = "all",
    ) -> tuple[np.ndarray, np.ndarray]:
        """Encodes each text in parallel (all cores by default) into one array.

        Returns `(ids, offsets)`: the uint32 ids of all texts concatenated, and int64
        offsets of length `len(texts) + 1`, so text `i` is `ids[offsets[i]:offsets[i + 1]]`.
        Unlike `encode_batch` no Python int is made per token, so it scales with threads;
        texts over about 1 MB are also cut at safe points and encoded in parallel. Special
        tokens as in `encode`.
        """
        texts = self._check_batch(texts, "encode_batch_flat")
        core = self._checked_batch_core(texts, allowed_special, disallowed_special)
        return core.encode_batch_flat(texts, num_threads)

    def _checked_batch_core(
        self,
        texts: list[str],
        allowed_special: AllowedSpecial,
        disallowed_special: DisallowedSpecial,
    ) -> _core.CoreTokenizer:
        core, disallowed = self._policy(allowed_special, disallowed_special)
        i = _specials.first_text_with(texts, disallowed)
        if i is not None:
            try:
                _specials.raise_disallowed(texts[i], disallowed)
            except ValueError as e:
                raise ValueError(f"texts[{i}]: {e}") from None
        return core

    @staticmethod
    def _check_batch(texts: Sequence[str], name: str) -> list[str]:
        """`texts` as a list, after checking the arguments of a batch call."""
        if isinstance(texts, str):
            raise TypeError(f"{name} takes a list of str, not a single str")
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}] must be str, not {type(t).__name__}")
        return texts  # num_threads is the core's to check: one rule for every call

    def encode_iterable(
        self,
        iterable: Iterable[str],
        *,
        allowed_special: AllowedSpecial = (),
        disallowed_special: DisallowedSpecial = "all",
    ) -> Iterator[int]:
        """Streams the token ids of the concatenated strings of `iterable` (e.g. a file's
        lines). Memory is bounded by the buffer, not the input: the buffer is encoded up to
        the last place where later text cannot change the tokens, and the rest kept.
        Special tokens as in `encode`; the error's offset counts from the stream's start,
        and a special token spelled across two strings is found too."""
        core, disallowed = self._policy(allowed_special, disallowed_special)
        # The text already encoded that a disallowed token could have begun in: it is
        # checked again with the next buffer, so a token cut by a flush is still seen.
        overlap = max((len(t) for t in disallowed), default=1) - 1
        pieces: list[str] = []
        size = 0
        threshold = _FLUSH_CHARS
        done = 0  # characters encoded so far
        tail = ""  # the last `overlap` of them
        for i, piece in enumerate(iterable):
            if not isinstance(piece, str):
                raise TypeError(f"item {i} of the iterable must be str, not {type(piece).__name__}")
            pieces.append(piece)
            size += len(piece)
            if size < threshold:
                continue
            buffer = "".join(pieces)
            _specials.raise_disallowed(tail + buffer, disallowed, done - len(tail))
            ids, consumed = core.encode_prefix(buffer)
            yield from ids
            if disallowed and consumed:
                tail = (tail + buffer[:consumed])[-overlap:] if overlap else ""
            done += consumed
            rest = buffer[consumed:]
            pieces, size = [rest], len(rest)
            # No safe cut in a long run of text: wait for more before trying again.
            threshold = _FLUSH_CHARS if consumed else 2 * size
        buffer = "".join(pieces)
        _specials.raise_disallowed(tail + buffer, disallowed, done - len(tail))
        yield from core.encode(buffer)

    # -- decoding ---------------------------------------------------------------------------

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The concatenated bytes of `ids`. An id outside the vocabulary, or one it leaves
        unused: KeyError."""
        if isinstance(ids, np.ndarray):
            ids = ids.tolist()
        elif not isinstance(ids, list):
            ids = list(ids)
        try:
            return self._core.decode_bytes(ids)
        except (OverflowError, TypeError):
            self._raise_bad_id(ids)
            raise

    def decode(self, ids: Iterable[int]) -> str:
        """The text of `ids`; byte sequences that are not UTF-8 become U+FFFD."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def _raise_bad_id(self, ids: list) -> None:
        for i in ids:
            if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
                raise TypeError(f"token ids must be int, not {type(i).__name__}: {i!r}")
            if not 0 <= i < self.vocab_size:
                raise KeyError(
                    f"token id {i} is out of range for a vocabulary of {self.vocab_size} tokens"
                )

    # -- the vocabulary ---------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        """The number of token ids, special tokens included: ids are below it, and all are
        used unless the vocabulary leaves gaps (tiktoken's `cl100k_base` does: this is then
        the highest id + 1, tiktoken's n_vocab, and `len(vocab)` is smaller)."""
        return self._core.vocab_size

    @property
    def n_vocab(self) -> int:
        """tiktoken's name for `vocab_size`."""
        return self._core.vocab_size

    def __len__(self) -> int:
        return self._core.vocab_size

    @property
    def special_tokens(self) -> list[str]:
        """The special tokens, in the order given (each is its own id where `encode` and
        friends allow it)."""
        return self._core.special_tokens

    @property
    def special_tokens_set(self) -> set[str]:
        """tiktoken's name: the special tokens as a set."""
        return set(self._core.special_tokens)

    @property
    def vocab(self) -> Mapping[int, bytes]:
        """The vocabulary, id -> token bytes: a read-only view, built on first use and kept,
        so `tok.vocab[i]` is a dictionary lookup (for one token,
        `decode_single_token_bytes(i)` builds nothing)."""
        cached = self.__dict__.get("_vocab_view")
        if cached is None:
            cached = MappingProxyType(self._core.vocab())
            self.__dict__["_vocab_view"] = cached
        return cached

    @property
    def merges(self) -> list[tuple[bytes, bytes]]:
        """A copy of the merges in rank order."""
        return self._core.merges()

    def decode_single_token_bytes(self, token_id: int) -> bytes:
        """The bytes of one token (tiktoken's name); KeyError for an id outside the vocabulary."""
        return self.decode_bytes([token_id])

    def decode_batch(self, batch: Iterable[Iterable[int]]) -> list[str]:
        """`decode` of each id sequence."""
        return [self.decode(ids) for ids in batch]

    def id_to_token(self, token_id: int) -> str | bytes:
        """The token `token_id` stands for: its text when its bytes are UTF-8, else the bytes
        (a byte-level token can be part of a character). `token_to_id` inverts it."""
        raw = self.decode_single_token_bytes(token_id)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw

    def token_to_id(self, token: str | bytes) -> int:
        """The id of a token given as its text (e.g. "<|endoftext|>") or bytes; KeyError if
        it is not in the vocabulary."""
        if isinstance(token, str):
            raw = token.encode("utf-8")
        elif isinstance(token, bytes):
            raw = token
        else:
            raise TypeError(f"token must be str or bytes, not {type(token).__name__}")
        found = self._core.token_id(raw)
        if found is None:
            raise KeyError(f"{token!r} is not a token of this vocabulary")
        return found

    @property
    def eot_id(self) -> int | None:
        """The id of "<|endoftext|>" when it is a special token, else None."""
        specials = self.special_tokens
        if "<|endoftext|>" in specials:
            return self._core.special_ids[specials.index("<|endoftext|>")]
        return None

    def __repr__(self) -> str:
        return (
            f"Tokenizer(vocab_size={self.vocab_size}, special_tokens={self.special_tokens!r}, "
            f"pattern={self.pattern!r})"
        )

    def __eq__(self, other: object) -> bool:
        """Same tokens, merges, special tokens and split pattern: the same ids for every
        text."""
        if not isinstance(other, Tokenizer):
            return NotImplemented
        if self._core is other._core:
            return True
        return (
            self.vocab_size == other.vocab_size
            and self.special_tokens == other.special_tokens
            and self.pattern == other.pattern
            and self.vocab == other.vocab
            and self.merges == other.merges
        )

    __hash__ = None  # type: ignore[assignment]  # equal by contents, which a hash would copy

    def __reduce__(self) -> tuple:
        # Pickled as its contents (multiprocessing.Pool, datasets.map(num_proc=...) send the
        # tokenizer to worker processes this way) and rebuilt there.
        # Special tokens are in the vocabulary, so they keep their ids.
        return (Tokenizer, (dict(self.vocab), self.merges, self.special_tokens, self.pattern))

    def __copy__(self) -> Tokenizer:
        return self._wrap(self._core)  # the core is immutable: sharing it is a copy

    def __deepcopy__(self, memo: dict) -> Tokenizer:
        return self._wrap(self._core)


def encode_file(
    tokenizer: Tokenizer,
    input_path: PathLike,
    output_path: PathLike,
    *,
    dtype: str = "uint16",
    num_threads: int | None = None,
    progress: bool = False,
    allowed_special: AllowedSpecial = "all",
) -> int:
    """Encodes the UTF-8 file `input_path` into `output_path` (`.npy`, loadable with
    `np.load`, or raw little-endian `.bin`, whose dtype is recorded in `FILE.bin.json`) with
    bounded memory; returns the token count. The output appears only when complete.

    `input_path` may be compressed (`.gz`, `.xz`, `.bz2`, by its suffix): it is decompressed
    as it is read, a window at a time, with no decompressed copy on disk or in memory.

    Unlike `encode`, and on purpose: a file here is a training corpus, whose special tokens
    (e.g. "<|endoftext|>" between documents) are meant, so by default every special token is
    encoded as its id. `allowed_special` narrows that (`()`: all of them ordinary text);
    nothing is refused.
    """
    tokens, _ = encode_file_sized(
        tokenizer,
        input_path,
        output_path,
        dtype=dtype,
        num_threads=num_threads,
        progress=progress,
        allowed_special=allowed_special,
    )
    return tokens


def encode_file_sized(
    tokenizer: Tokenizer,
    input_path: PathLike,
    output_path: PathLike,
    *,
    dtype: str = "uint16",
    num_threads: int | None = None,
    progress: bool = False,
    allowed_special: AllowedSpecial = "all",
) -> tuple[int, int]:
    """`encode_file`, returning (tokens, bytes of text): a compressed file's text size is
    known only once it is read."""
    if not isinstance(tokenizer, Tokenizer):
        raise TypeError(f"tokenizer must be a bpelm Tokenizer, not {type(tokenizer).__name__}")
    if dtype not in ("uint16", "uint32"):
        raise ValueError(f'dtype must be "uint16" or "uint32", not {dtype!r}')
    core, _ = tokenizer._policy(allowed_special, ())
    tokens, size = _core.encode_file(
        core,
        os.fspath(input_path),
        os.fspath(output_path),
        dtype,
        num_threads,
        bool(progress),
    )
    if Path(output_path).suffix == ".bin":
        write_bin_sidecar(output_path, dtype, tokens)  # a raw array does not say its width
    return tokens, size
