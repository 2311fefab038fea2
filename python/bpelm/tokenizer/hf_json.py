r"""HuggingFace `tokenizer.json` for byte-level BPE (GPT-2's kind): the `BPE` model, the
`ByteLevel` pre-tokenizer (GPT-2's split pattern) and decoder, and special tokens as
`added_tokens` (also in the model's vocabulary, as GPT-2's own file has them: `tokenizers`
keeps an added token's id only when the model knows it, else gives it the next free id, which
would be wrong for tiktoken's vocabularies with unused ids).

Another split pattern (cl100k, o200k, a custom regex) is written as `tokenizers` itself
writes that pipeline: a `Sequence` of `Split` (the regex, matches isolated, the text between
them kept as pieces, as bpelm does) and `ByteLevel` without its own regex. `tokenizers` runs
the regex on Oniguruma with Ruby's syntax, where `X{n,m}+` is not possessive but a repetition
of `X{n,m}`: cl100k's `\p{N}{1,3}+` is written `\p{N}{1,3}` (the same matches there, at the end
of an alternative), and read back as cl100k. A custom regex is written as given: one that
relies on `{n,m}+` being possessive splits differently in `tokenizers`.

Other pipelines (normalizers, other pre-tokenizers or models) are refused with a
`ValueError` naming the part, rather than loaded to give different ids.
"""

from __future__ import annotations

import json
import os
from typing import Any, Union

from bpelm import _core
from bpelm._files import write_atomic
from bpelm.tokenizer.gpt2 import byte_decoder

PathLike = Union[str, "os.PathLike[str]"]


def _byte_encoder() -> dict[int, str]:
    return {b: c for c, b in byte_decoder().items()}


# The named patterns that Oniguruma needs spelled otherwise (see the module's docstring).
_NAMED = ("cl100k", "o200k")


def hf_regex(pattern: str) -> str:
    """The regex to give `tokenizers` for `pattern` (a bpelm name or a regex)."""
    name, regex = _core.split_pattern(pattern)
    if name is not None:
        regex = regex.replace(r"\p{N}{1,3}+", r"\p{N}{1,3}")
    return regex


def _pattern_of_regex(regex: str) -> str:
    """bpelm's pattern for a `Split` regex: the name whose `hf_regex` it is, else itself."""
    for name in _NAMED:
        if regex == hf_regex(name):
            return name
    return regex


def pre_tokenizer(pattern: str) -> dict[str, Any]:
    """The `pre_tokenizer` of a split pattern: GPT-2's is `ByteLevel`'s own, any other a
    `Split` on its regex before a `ByteLevel` that does not split."""
    if pattern == "gpt2":
        return {
            "type": "ByteLevel",
            "add_prefix_space": False,
            "trim_offsets": True,
            "use_regex": True,
        }
    return {
        "type": "Sequence",
        "pretokenizers": [
            {
                "type": "Split",
                "pattern": {"Regex": hf_regex(pattern)},
                "behavior": "Isolated",
                "invert": False,
            },
            {
                "type": "ByteLevel",
                "add_prefix_space": False,
                "trim_offsets": True,
                "use_regex": False,
            },
        ],
    }


def to_json(
    vocab: dict[int, bytes],
    merges: list[tuple[bytes, bytes]],
    specials: dict[str, int],
    pattern: str = "gpt2",
) -> dict[str, Any]:
    """The `tokenizer.json` document of a byte-level BPE vocabulary; `specials` maps each
    special token to its id (also in `vocab`); `pattern` is the split pattern (a bpelm name
    or a regex)."""
    enc = _byte_encoder()

    def printable(token: bytes) -> str:
        return "".join(enc[b] for b in token)

    special_ids = set(specials.values())
    model_vocab = {printable(t): i for i, t in sorted(vocab.items()) if i not in special_ids}
    for token, i in specials.items():
        if model_vocab.setdefault(token, i) != i:
            raise ValueError(
                f"special token {token!r} is spelled like the byte-level form of token "
                f"{model_vocab[token]}: a tokenizer.json cannot give both their ids"
            )
    byte_level = {"add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {
                "id": i,
                "content": s,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": True,
            }
            for s, i in sorted(specials.items(), key=lambda item: item[1])
        ],
        "normalizer": None,
        "pre_tokenizer": pre_tokenizer(pattern),
        "post_processor": None,
        "decoder": {"type": "ByteLevel", **byte_level},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": model_vocab,
            # "left right" strings: byte-level tokens hold no space (it is written "Ġ"),
            # and every tokenizers release reads this form.
            "merges": [f"{printable(a)} {printable(b)}" for a, b in merges],
        },
    }


def write(path: PathLike, document: dict[str, Any]) -> None:
    """Writes `document` to `path` atomically."""
    write_atomic(path, json.dumps(document, ensure_ascii=False, indent=2) + "\n")


def _check(condition: bool, path: PathLike, what: str) -> None:
    if not condition:
        raise ValueError(f"{path}: {what}; bpelm reads byte-level BPE (GPT-2 style) only")


def _is_byte_level(part: Any, splits: bool) -> bool:
    """A `ByteLevel` pre-tokenizer without a prefix space, splitting with GPT-2's pattern or
    not splitting at all."""
    return (
        isinstance(part, dict)
        and part.get("type") == "ByteLevel"
        and bool(part.get("use_regex", True)) == splits
        and not part.get("add_prefix_space", False)
    )


def _split_regex(part: Any) -> str | None:
    """The regex of a `Split` that isolates its matches, else None."""
    if not (
        isinstance(part, dict)
        and part.get("type") == "Split"
        and part.get("behavior") == "Isolated"
        and not part.get("invert", False)
        and isinstance(part.get("pattern"), dict)
    ):
        return None
    regex = part["pattern"].get("Regex")
    return regex if isinstance(regex, str) else None


def pattern_of(pre: Any) -> str | None:
    """The split pattern a `pre_tokenizer` applies ("gpt2", or a regex), or None when it is
    not one of the two forms bpelm reads."""
    if _is_byte_level(pre, splits=True):
        return "gpt2"
    if isinstance(pre, dict) and pre.get("type") == "Sequence":
        parts = pre.get("pretokenizers")
        if isinstance(parts, list) and len(parts) == 2 and _is_byte_level(parts[1], False):
            regex = _split_regex(parts[0])
            return None if regex is None else _pattern_of_regex(regex)
    return None


def read(
    path: PathLike,
) -> tuple[dict[int, bytes], list[tuple[bytes, bytes]], list[str], str]:
    """`(vocab, merges, special tokens, split pattern)` of a byte-level BPE `tokenizer.json`;
    the special tokens are the `added_tokens` (their ids kept), in id order."""
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    model = doc.get("model") or {}
    _check(model.get("type") == "BPE", path, f"model type {model.get('type')!r} is not BPE")
    _check(doc.get("normalizer") is None, path, "it has a normalizer")
    pattern = pattern_of(doc.get("pre_tokenizer"))
    _check(
        pattern is not None,
        path,
        "its pre_tokenizer is neither ByteLevel with GPT-2's pattern nor Split(Regex, "
        "Isolated) then ByteLevel(use_regex=false), without a prefix space",
    )
    _check(not model.get("continuing_subword_prefix"), path, "it has a subword prefix")
    _check(not model.get("end_of_word_suffix"), path, "it has an end-of-word suffix")
    decoder = byte_decoder()

    def raw(token: str) -> bytes:
        try:
            return bytes(decoder[c] for c in token)
        except KeyError as e:
            raise ValueError(f"{path}: token {token!r} is not byte-level ({e})") from None

    added = sorted(doc.get("added_tokens", []), key=lambda a: a["id"])
    added_ids = {int(a["id"]) for a in added}
    # An added token may be in the model's vocabulary too (GPT-2's file, bpelm's): as itself,
    # not in byte-level form.
    vocab = {int(i): raw(t) for t, i in model["vocab"].items() if int(i) not in added_ids}
    merges = []
    for m in model.get("merges", []):
        left, right = m.split(" ") if isinstance(m, str) else m
        merges.append((raw(left), raw(right)))
    specials = []
    for token in added:
        vocab[int(token["id"])] = token["content"].encode("utf-8")
        specials.append(token["content"])
    return vocab, merges, specials, pattern
