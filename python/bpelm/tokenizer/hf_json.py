"""HuggingFace `tokenizer.json` for byte-level BPE (GPT-2's kind): the `BPE` model, the
`ByteLevel` pre-tokenizer (GPT-2's split pattern) and decoder, and special tokens as
`added_tokens`.

Other pipelines (normalizers, other pre-tokenizers or models) are refused with a
`ValueError` naming the part, rather than loaded to give different ids.
"""

from __future__ import annotations

import json
import os
from typing import Any, Union

from bpelm._files import write_atomic
from bpelm.tokenizer.gpt2 import byte_decoder

PathLike = Union[str, "os.PathLike[str]"]


def _byte_encoder() -> dict[int, str]:
    return {b: c for c, b in byte_decoder().items()}


def to_json(
    vocab: dict[int, bytes], merges: list[tuple[bytes, bytes]], specials: dict[str, int]
) -> dict[str, Any]:
    """The `tokenizer.json` document of a byte-level BPE vocabulary; `specials` maps each
    special token to its id (also in `vocab`)."""
    enc = _byte_encoder()

    def printable(token: bytes) -> str:
        return "".join(enc[b] for b in token)

    special_ids = set(specials.values())
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
        "pre_tokenizer": {"type": "ByteLevel", **byte_level},
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
            "vocab": {printable(t): i for i, t in sorted(vocab.items()) if i not in special_ids},
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


def _is_gpt2_byte_level(part: Any) -> bool:
    return (
        isinstance(part, dict)
        and part.get("type") == "ByteLevel"
        and part.get("use_regex", True)
        and not part.get("add_prefix_space", False)
    )


def read(
    path: PathLike,
) -> tuple[dict[int, bytes], list[tuple[bytes, bytes]], list[str]]:
    """`(vocab, merges, special tokens)` of a byte-level BPE `tokenizer.json`; the special
    tokens are the `added_tokens` (their ids kept), in id order."""
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    model = doc.get("model") or {}
    _check(model.get("type") == "BPE", path, f"model type {model.get('type')!r} is not BPE")
    _check(doc.get("normalizer") is None, path, "it has a normalizer")
    _check(
        _is_gpt2_byte_level(doc.get("pre_tokenizer")),
        path,
        "its pre_tokenizer is not ByteLevel with GPT-2's pattern and no prefix space",
    )
    _check(not model.get("continuing_subword_prefix"), path, "it has a subword prefix")
    _check(not model.get("end_of_word_suffix"), path, "it has an end-of-word suffix")
    decoder = byte_decoder()

    def raw(token: str) -> bytes:
        try:
            return bytes(decoder[c] for c in token)
        except KeyError as e:
            raise ValueError(f"{path}: token {token!r} is not byte-level ({e})") from None

    vocab = {int(i): raw(t) for t, i in model["vocab"].items()}
    merges = []
    for m in model.get("merges", []):
        left, right = m.split(" ") if isinstance(m, str) else m
        merges.append((raw(left), raw(right)))
    specials = []
    for added in sorted(doc.get("added_tokens", []), key=lambda a: a["id"]):
        vocab[int(added["id"])] = added["content"].encode("utf-8")
        specials.append(added["content"])
    return vocab, merges, specials
