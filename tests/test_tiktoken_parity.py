"""bpelm with GPT-2's vocab and merges encodes exactly like tiktoken's GPT-2 encoding.

tiktoken normally downloads its GPT-2 ranks; here they are built offline from the same
vocab.json, so both sides use identical data.
"""

from __future__ import annotations

import random

import pytest
from bpelm import Tokenizer
from bpelm.tokenizer.gpt2 import EOT, tiktoken_encoding
from hypothesis import given, settings
from hypothesis import strategies as st

tiktoken = pytest.importorskip("tiktoken")


@pytest.fixture(scope="module")
def reference(gpt2_files):
    return tiktoken_encoding(gpt2_files[0])


@pytest.fixture(scope="module")
def ours(gpt2_files):
    return Tokenizer.from_files(*gpt2_files, special_tokens=[EOT])


# Pieces that stress the pretokenizer and the merges when glued together at random.
TRICKY = [
    " ", "  ", "   ", "\n", "\n\n", "\t", "\r\n", "\u00a0", "\u3000", "a", "Z", "the", " the",
    "1", "23", "456", " 7", "\u0663", "'", "'s", "'ll", "'VE", "n't", "!", "...", "?!", "--",
    " (", ")", "\U0001f600", "\U0001f468\u200d\U0001f469", "\u4e2d\u6587", "\u00e9", "e\u0301",
    "\u0645\u0631\u062d\u0628\u0627", "\ufffd", "\x00", EOT, "<|endoftext", "|>", "<|",
]  # fmt: skip
tricky_text = st.lists(st.sampled_from(TRICKY), max_size=40).map("".join)
any_text = st.one_of(st.text(), tricky_text, st.text(alphabet=" \t\n\r0123456789'sa!"))


@settings(max_examples=400, deadline=None)
@given(any_text)
def test_encode_matches_tiktoken(ours, reference, text):
    assert ours.encode(text, allowed_special="all") == reference.encode(text, allowed_special="all")


@pytest.mark.parametrize("sample", ["web_sample", "books_sample"])
def test_encode_matches_tiktoken_on_corpora(ours, reference, sample, request):
    text = request.getfixturevalue(sample)
    expected = reference.encode(text, allowed_special="all")
    got = ours.encode(text, allowed_special="all")
    assert len(got) == len(expected)
    assert got == expected
    assert ours.encode_to_array(text, allowed_special="all").tolist() == expected


def test_long_runs_match_tiktoken(ours, reference):
    runs = ["a" * 50_000, "7" * 20_000, " " * 30_000 + "x", "!?" * 10_000, "\U0001f600" * 5000]
    for text in runs:
        assert ours.encode(text) == reference.encode(text)


def test_100kb_runs_match_tiktoken(ours, reference):
    # Each is one pretoken of 100 KB, so it takes the long-word path of the encoder.
    rng = random.Random(5)
    size = 100_000
    runs = {
        "digits": "".join(rng.choice("0123456789") for _ in range(size)),
        "letters": "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(size)),
        "one letter": "a" * size,
        "newlines": "\n" * size,
        "cjk": "".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(size // 3)),
    }
    for name, text in runs.items():
        expected = reference.encode(text)
        assert ours.encode_to_array(text).tolist() == expected, name


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=50256), max_size=60))
def test_decode_matches_tiktoken(ours, reference, ids):
    assert ours.decode_bytes(ids) == reference.decode_bytes(ids)
    assert ours.decode(ids) == reference.decode(ids, errors="replace")


def test_decode_of_corpus_tokens(ours, reference, web_sample):
    ids = reference.encode(web_sample[:200_000], allowed_special="all")
    rng = random.Random(0)
    start = rng.randrange(len(ids) - 1000)
    window = ids[start : start + 1000]
    assert ours.decode_bytes(window) == reference.decode_bytes(window)
