"""Adapters that put every tokenizer library behind one interface, on GPT-2's own vocabulary.

Each encoder adapter loads GPT-2 from the local `vocab.json` / `merges.txt` (nothing is
downloaded) and exposes the library's fastest documents-in, ids-out API. Trainer adapters wrap
each library's BPE trainer with the same corpus, vocab size and `<|endoftext|>` handling.
Imports of third-party libraries happen inside the adapters, so a missing optional library
is reported as "not installed" instead of breaking the whole benchmark.
"""

from __future__ import annotations

import base64
import importlib.metadata
import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from bpelm import _core
from bpelm.tokenizer.gpt2 import EOT, GPT2_PATTERN, byte_decoder, mergeable_ranks

EOT_ID = 50256


def token_bytes(token: str, decoder: dict[str, int]) -> bytes:
    return bytes(decoder[ch] for ch in token)


class Gpt2Assets:
    """GPT-2's vocabulary in every format a contender loads, built once into a cache dir."""

    def __init__(self, vocab_json: Path, merges_txt: Path, cache_dir: Path) -> None:
        self.vocab_json = vocab_json
        self.merges_txt = merges_txt
        self.cache_dir = cache_dir
        self.tiktoken_file = cache_dir / "gpt2_local.tiktoken"
        self.tokenizer_json = cache_dir / "gpt2_local.tokenizer.json"

    def mergeable_ranks(self) -> dict[bytes, int]:
        return mergeable_ranks(self.vocab_json)

    def build(self) -> None:
        """Writes the .tiktoken rank file and the HF tokenizer.json (if not already there)."""
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        if not self.tiktoken_file.exists():
            ranks = self.mergeable_ranks()
            lines = [
                f"{base64.b64encode(b).decode()} {r}"
                for b, r in sorted(ranks.items(), key=lambda kv: kv[1])
            ]
            tmp = self.tiktoken_file.with_suffix(".tmp")
            tmp.write_text("\n".join(lines) + "\n", encoding="ascii")
            tmp.replace(self.tiktoken_file)
        if not self.tokenizer_json.exists():
            try:
                from tokenizers import Tokenizer, decoders, models, pre_tokenizers
            except ImportError:  # HF tokenizers is then skipped as a contender anyway
                return

            tok = Tokenizer(models.BPE.from_file(str(self.vocab_json), str(self.merges_txt)))
            tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
            tok.decoder = decoders.ByteLevel()
            tok.add_special_tokens([EOT])
            tmp = self.tokenizer_json.with_suffix(".tmp")
            tok.save(str(tmp))
            tmp.replace(self.tokenizer_json)


def version_of(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def flat_from_lists(out: list[list[int]]) -> np.ndarray:
    total = sum(len(x) for x in out)
    return np.fromiter(itertools.chain.from_iterable(out), dtype=np.uint32, count=total)


# ---- encoders --------------------------------------------------------------------------


class Encoder:
    """One library's GPT-2 encoder. `encode_docs` is the timed call; `flat` is not timed."""

    name = ""
    dist = ""  # the PyPI distribution, for its version
    api = ""  # what encode_docs calls, for the results table

    def load(self, assets: Gpt2Assets) -> None:
        raise NotImplementedError

    def encode_docs(self, docs: list[str], threads: int) -> Any:
        raise NotImplementedError

    def flat(self, out: Any) -> np.ndarray:
        """All ids of `encode_docs`'s output, concatenated, as uint32."""
        return flat_from_lists(out)

    def per_doc(self, out: Any) -> list[list[int]]:
        return [list(x) for x in out]

    def encode_text(self, text: str) -> list[int]:
        """One string on the calling thread (pathological inputs)."""
        return self.per_doc(self.encode_docs([text], 1))[0]


class TiktokenEncoder(Encoder):
    name, dist = "tiktoken", "tiktoken"
    api = "encode_ordinary (1 thread) / encode_ordinary_batch(num_threads=N)"

    def load(self, assets: Gpt2Assets) -> None:
        import tiktoken

        self.enc = tiktoken.Encoding(
            name="gpt2_local",
            pat_str=GPT2_PATTERN,
            mergeable_ranks=assets.mergeable_ranks(),
            special_tokens={EOT: EOT_ID},
        )

    def encode_docs(self, docs: list[str], threads: int) -> Any:
        if threads == 1:
            enc = self.enc.encode_ordinary
            return [enc(d) for d in docs]
        return self.enc.encode_ordinary_batch(docs, num_threads=threads)

    def encode_text(self, text: str) -> list[int]:
        return self.enc.encode_ordinary(text)


class HfEncoder(Encoder):
    name, dist = "hf-tokenizers", "tokenizers"
    api = "Tokenizer.encode_batch_fast(add_special_tokens=False) + .ids (rayon pool of N)"

    def load(self, assets: Gpt2Assets) -> None:
        from tokenizers import Tokenizer

        self.tok = Tokenizer.from_file(str(assets.tokenizer_json))

    def encode_docs(self, docs: list[str], threads: int) -> Any:
        return [e.ids for e in self.tok.encode_batch_fast(docs, add_special_tokens=False)]

    def encode_text(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False).ids


class RiptokenEncoder(Encoder):
    name, dist = "riptoken", "riptoken"
    api = "CoreBPE.encode_ordinary (1 thread) / encode_ordinary_batch (rayon pool of N)"

    def load(self, assets: Gpt2Assets) -> None:
        import riptoken

        self.core = riptoken.CoreBPE(assets.mergeable_ranks(), {EOT: EOT_ID}, GPT2_PATTERN)

    def encode_docs(self, docs: list[str], threads: int) -> Any:
        if threads == 1:
            enc = self.core.encode_ordinary
            return [enc(d) for d in docs]
        return self.core.encode_ordinary_batch(docs)

    def encode_text(self, text: str) -> list[int]:
        return self.core.encode_ordinary(text)


class GigatokenEncoder(Encoder):
    name, dist = "gigatoken", "gigatoken"
    api = "Tokenizer.encode_batch(parallel=N>1) -> awkward.Array (rayon pool of N)"

    def load(self, assets: Gpt2Assets) -> None:
        import gigatoken

        self.tok = gigatoken.Tokenizer.from_tiktoken(
            assets.tiktoken_file, pretokenizer="gpt2", special_tokens={EOT: EOT_ID}
        )

    def encode_docs(self, docs: list[str], threads: int) -> Any:
        return self.tok.encode_batch(docs, parallel=threads > 1)

    def flat(self, out: Any) -> np.ndarray:
        import awkward as ak

        return np.asarray(ak.flatten(out), dtype=np.uint32)

    def per_doc(self, out: Any) -> list[list[int]]:
        return out.to_list()

    def encode_text(self, text: str) -> list[int]:
        return self.tok.encode(text).tolist()


class TokieEncoder(Encoder):
    name, dist = "tokie", "tokie"
    api = "Tokenizer.encode_batch(add_special_tokens=False) + .ids (threads: CPU affinity)"

    def load(self, assets: Gpt2Assets) -> None:
        import tokie

        self.tok = tokie.Tokenizer.from_json(str(assets.tokenizer_json))

    def encode_docs(self, docs: list[str], threads: int) -> Any:
        if threads == 1:
            enc = self.tok.encode
            return [enc(d, add_special_tokens=False).ids for d in docs]
        return [e.ids for e in self.tok.encode_batch(docs, add_special_tokens=False)]

    def encode_text(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False).ids


class FastokensEncoder(Encoder):
    name, dist = "fastokens", "fastokens"
    api = "Tokenizer.encode_batch_flat -> (uint32 ids, uint64 offsets) bytes"

    def load(self, assets: Gpt2Assets) -> None:
        import fastokens

        self.tok = fastokens.Tokenizer.from_file(str(assets.tokenizer_json))

    def encode_docs(self, docs: list[str], threads: int) -> Any:
        return self.tok.encode_batch_flat(docs, add_special_tokens=False)

    def flat(self, out: Any) -> np.ndarray:
        return np.frombuffer(out[0], dtype="<u4").astype(np.uint32)

    def per_doc(self, out: Any) -> list[list[int]]:
        ids = self.flat(out)
        offsets = np.frombuffer(out[1], dtype="<u8")
        return [ids[a:b].tolist() for a, b in zip(offsets[:-1], offsets[1:])]

    def encode_text(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False).ids


class BpelmEncoder(Encoder):
    name, dist = "bpelm", "bpelm"
    api = "Tokenizer.encode_batch_flat(num_threads=N) -> (uint32 ids, int64 offsets)"

    def load(self, assets: Gpt2Assets) -> None:
        from bpelm.tokenizer import Tokenizer

        self.tok = Tokenizer.from_files(assets.vocab_json, assets.merges_txt, special_tokens=[EOT])

    def encode_docs(self, docs: list[str], threads: int) -> Any:
        # One call for all documents at every thread count, so that the scaling efficiency
        # compares one API with itself; a uint32 array skips building Python ints (under the
        # GIL lists would cap the threads). Builds without it fall back to lists.
        if hasattr(self.tok, "encode_batch_flat"):
            return self.tok.encode_batch_flat(docs, num_threads=threads)
        return self.tok.encode_batch(docs, num_threads=threads)

    def flat(self, out: Any) -> np.ndarray:
        if isinstance(out, tuple):
            return out[0].astype(np.uint32)
        if out and isinstance(out[0], np.ndarray):
            return np.concatenate(out).astype(np.uint32)
        return flat_from_lists(out)

    def per_doc(self, out: Any) -> list[list[int]]:
        if isinstance(out, tuple):
            ids, offsets = out
            return [ids[a:b].tolist() for a, b in zip(offsets[:-1], offsets[1:])]
        return super().per_doc(out)

    def encode_text(self, text: str) -> list[int]:
        # A list, as from the other contenders: `encode` builds it from ints made once per
        # id, which measured faster than `encode_to_array(text).tolist()`.
        return self.tok.encode(text)


ENCODERS: dict[str, Callable[[], Encoder]] = {
    cls.name: cls
    for cls in (
        BpelmEncoder,
        TiktokenEncoder,
        HfEncoder,
        RiptokenEncoder,
        GigatokenEncoder,
        TokieEncoder,
        FastokensEncoder,
    )
}


# ---- file encoders (corpus file -> .npy uint16) -----------------------------------------


def file_encoder(name: str, assets: Gpt2Assets) -> Callable[[Path, Path, int], int]:
    """`name`'s whole-file API as `f(src, dst, threads) -> #tokens`, writing a uint16 .npy.

    Loading happens here, outside the timed call. bpelm streams the file; tokie and gigatoken
    return the whole corpus's ids in memory, which are then saved (peak RSS shows that).
    Neither of those two puts an <|endoftext|> id between documents.
    """
    if name == "bpelm":
        from bpelm.tokenizer import Tokenizer, encode_file

        tok = Tokenizer.from_files(assets.vocab_json, assets.merges_txt, special_tokens=[EOT])

        def run(src: Path, dst: Path, threads: int) -> int:
            return int(encode_file(tok, src, dst, dtype="uint16", num_threads=threads))

        return run
    if name == "tokie":
        import tokie

        tok = tokie.Tokenizer.from_json(str(assets.tokenizer_json))

        def run(src: Path, dst: Path, threads: int) -> int:
            ids, _offsets = tok.encode_files([str(src)], separator=EOT.encode())
            np.save(dst, ids.astype(np.uint16))
            return len(ids)

        return run
    if name == "gigatoken":
        import awkward as ak
        import gigatoken

        tok = gigatoken.Tokenizer.from_tiktoken(
            assets.tiktoken_file, pretokenizer="gpt2", special_tokens={EOT: EOT_ID}
        )

        def run(src: Path, dst: Path, threads: int) -> int:
            source = gigatoken.TextFileSource([src], separator=EOT)
            ids = np.asarray(ak.flatten(tok.encode_files(source, parallel=threads > 1)))
            np.save(dst, ids.astype(np.uint16))
            return len(ids)

        return run
    raise ValueError(f"no whole-file encoder for {name}")


FILE_ENCODERS = ("bpelm", "tokie", "gigatoken")


# ---- trainers ---------------------------------------------------------------------------


def iter_documents(path: Path, chunk_chars: int = 1 << 22) -> Iterator[str]:
    """The file's documents (split on <|endoftext|>), streamed without reading it whole."""
    rest = ""
    with open(path, encoding="utf-8") as f:
        while True:
            chunk = f.read(chunk_chars)
            if not chunk:
                break
            parts = (rest + chunk).split(EOT)
            rest = parts.pop()
            yield from (p for p in parts if p)
    if rest:
        yield rest


def _hf_bytes(token: str) -> bytes:
    return token_bytes(token, _HF_DECODER)


_HF_DECODER = byte_decoder()


def train_with(name: str, path: Path, vocab_size: int, threads: int) -> list[tuple[bytes, bytes]]:
    """Trains `vocab_size` tokens (including <|endoftext|>) with `name`; returns the merges."""
    if name == "bpelm":
        from bpelm.tokenizer import train_bpe

        _vocab, merges = train_bpe(path, vocab_size, [EOT], num_threads=threads)
        return list(merges)
    if name == "rustbpe":
        import rustbpe

        tok = rustbpe.Tokenizer()
        # rustbpe has no special tokens: documents are split here, one id is left for EOT.
        tok.train_from_iterator(iter_documents(path), vocab_size - 1, pattern=GPT2_PATTERN)
        ranks = tok.get_mergeable_ranks()
        if isinstance(ranks, dict):
            ranks = list(ranks.items())
        ordered = sorted(((bytes(b), r) for b, r in ranks), key=lambda kv: kv[1])
        return _merges_from_ranks(ordered)
    if name == "hf-tokenizers":
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=[EOT],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(iter_documents(path), trainer=trainer)
        model = json.loads(tok.to_str())["model"]
        merges = []
        for m in model["merges"]:
            a, b = m.split(" ") if isinstance(m, str) else m
            merges.append((_hf_bytes(a), _hf_bytes(b)))
        return merges
    if name == "gigatoken":
        import gigatoken

        _vocab, merges = gigatoken.train_bpe(path, vocab_size, [EOT], separator=EOT.encode())
        return [(bytes(a), bytes(b)) for a, b in merges]
    raise ValueError(f"no trainer for {name}")


def _merges_from_ranks(ordered: list[tuple[bytes, int]]) -> list[tuple[bytes, bytes]]:
    """Recovers the merge pairs from ranks: BPE-encoding each multi-byte token with only the
    lower ranks leaves exactly the two parts it was merged from (tiktoken's own method). A
    token that does not split in two is left out (a contender's output is not checked here;
    bpelm's `merges_from_ranks` refuses it)."""
    return _core.merges_from_ranks(dict(ordered), strict=False)


TRAINERS = ("bpelm", "rustbpe", "hf-tokenizers", "gigatoken")


def merge_agreement(a: list[tuple[bytes, bytes]], b: list[tuple[bytes, bytes]]) -> dict:
    """How far two merge lists agree: the common prefix, and the overlap of their sets."""
    prefix = 0
    for x, y in zip(a, b):
        if x != y:
            break
        prefix += 1
    sa, sb = set(a), set(b)
    n = min(len(a), len(b))
    return {
        "len_a": len(a),
        "len_b": len(b),
        "common_prefix": prefix,
        "first_difference": None
        if prefix >= min(len(a), len(b))
        else [
            [x.decode("utf-8", "backslashreplace") for x in a[prefix]],
            [x.decode("utf-8", "backslashreplace") for x in b[prefix]],
        ],
        "set_overlap": len(sa & sb),
        "set_overlap_frac": round(len(sa & sb) / n, 4) if n else None,
    }
