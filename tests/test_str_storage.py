"""A text encodes the same whichever way CPython stores the str (ASCII, Latin-1, UCS-2,
UCS-4, a subclass, with or without CPython's UTF-8 copy): the bindings read a str's code
units themselves where the layout is known, and fall back to CPython's UTF-8 elsewhere."""

from __future__ import annotations

import ctypes
import platform
import sys

import bpelm._core as core
import pytest
from bpelm import Tokenizer
from bpelm.tokenizer.gpt2 import EOT, tiktoken_encoding
from hypothesis import given, settings
from hypothesis import strategies as st

# One text of each storage width, and texts whose only wide character sits at each end.
SAMPLES = [
    "",
    "plain ASCII, the common case",
    "Latin-1: caf\u00e9, na\u00efve, \u00ff",
    "UCS-2: \u20ac, \u4e2d\u6587, \u0645\u0631\u062d\u0628\u0627",
    "UCS-4: \U0001f600 \U0001f468\u200d\U0001f469 \U0010ffff",
    "\u00e9" + "x" * 200,
    "x" * 200 + "\u20ac",
    "\U0001f600" * 50 + " and" * 30,
]


class Str(str):
    """A str subclass: not laid out as a plain str, so it takes CPython's UTF-8."""


def with_utf8_copy(text: str) -> str:
    """A new str equal to `text` whose UTF-8 copy CPython has already made."""
    fresh = (text + "#")[:-1]
    ctypes.pythonapi.PyUnicode_AsUTF8.restype = ctypes.c_char_p
    ctypes.pythonapi.PyUnicode_AsUTF8.argtypes = [ctypes.py_object]
    ctypes.pythonapi.PyUnicode_AsUTF8(fresh)
    return fresh


@pytest.fixture(scope="module")
def gpt2(gpt2_files) -> Tokenizer:
    return Tokenizer.from_files(*gpt2_files, special_tokens=[EOT])


@pytest.fixture(scope="module")
def reference(gpt2_files):
    pytest.importorskip("tiktoken")
    return tiktoken_encoding(gpt2_files[0])


def test_storage_is_read_directly_on_known_cpythons():
    known = (
        platform.python_implementation() == "CPython"
        and (3, 9) <= sys.version_info[:2] <= (3, 14)
        and sys.maxsize > 2**32
    )
    if not known:
        pytest.skip("str storage is read directly only on 64-bit CPython 3.9 to 3.14")
    # A failed layout self-check would silently cost speed, not correctness: catch it here.
    assert core.reads_str_storage()


@pytest.mark.parametrize("make", [str, Str, with_utf8_copy], ids=["str", "subclass", "cached"])
def test_every_storage_encodes_like_tiktoken(gpt2, reference, make):
    for text in SAMPLES:
        want = reference.encode_ordinary(text)
        assert gpt2.encode(make(text)) == want, text
        assert gpt2.encode_to_array(make(text)).tolist() == want, text


@pytest.mark.parametrize("num_threads", [1, 2])
def test_mixed_batches_encode_like_each_text(gpt2, reference, num_threads):
    texts = [maker(t) for t in SAMPLES * 3 for maker in (str, Str, with_utf8_copy)]
    want = [reference.encode_ordinary(t) for t in texts]
    assert gpt2.encode_batch(texts, num_threads=num_threads) == want
    ids, offsets = gpt2.encode_batch_flat(texts, num_threads=num_threads)
    got = [ids[a:b].tolist() for a, b in zip(offsets[:-1], offsets[1:])]
    assert got == want


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(), max_size=8))
def test_any_texts_in_a_parallel_batch(gpt2, reference, texts):
    ids, offsets = gpt2.encode_batch_flat(texts, num_threads=2, allowed_special="all")
    got = [ids[a:b].tolist() for a, b in zip(offsets[:-1], offsets[1:])]
    # The tokenizer has <|endoftext|> as a special token (hypothesis tries the module's
    # string constants, that one among them).
    assert got == [reference.encode(t, allowed_special="all") for t in texts]


# A lone surrogate in each width: in a UCS-2 string, and in a UCS-4 one.
SURROGATES = ["ab\ud800cd", "\U0001f600 \udfff"]


@pytest.mark.parametrize("bad", SURROGATES)
def test_lone_surrogates_raise_cpythons_error(gpt2, bad):
    for encode in (gpt2.encode, gpt2.encode_to_array):
        with pytest.raises(UnicodeEncodeError, match="surrogates not allowed"):
            encode(bad)
    for num_threads in (1, 2):
        batch = ["fine", "caf\u00e9", bad, "\u20ac"]
        with pytest.raises(UnicodeEncodeError, match="surrogates not allowed"):
            gpt2.encode_batch_flat(batch, num_threads=num_threads)
        with pytest.raises(UnicodeEncodeError, match="surrogates not allowed"):
            gpt2.encode_batch(batch, num_threads=num_threads)


# Longer than one transcoding step (65,536 characters) and than one work unit of a parallel
# batch (2**20 bytes): in Latin-1, UCS-2 and UCS-4, with safe cuts (lines) and without.
LONG = [
    "Caf\u00e9 au lait, na\u00efve words\nand 123 more \n\n" * 30_000,
    "\u20ac prices: 12,50 \u20ac each\nIt's fine.\n" * 40_000,
    "\U0001f600 faces   and\ttabs\n<|endoftext|>" * 50_000,
    "one long line without a newline, \u00fcber " * 40_000,
]


@pytest.mark.parametrize("num_threads", [1, 2])
def test_long_texts_of_each_width_encode_like_tiktoken(gpt2, reference, num_threads):
    # Also shorter than a work unit, but longer than a transcoding step.
    texts = LONG + [t[:200_000] for t in LONG]
    want = [reference.encode(t, allowed_special="all") for t in texts]
    ids, offsets = gpt2.encode_batch_flat(texts, num_threads=num_threads, allowed_special="all")
    got = [ids[a:b].tolist() for a, b in zip(offsets[:-1], offsets[1:])]
    assert got == want
    assert gpt2.encode_to_array(LONG[2], allowed_special="all").tolist() == want[2]


@pytest.mark.parametrize("num_threads", [1, 2])
def test_a_lone_surrogate_late_in_a_long_text_raises(gpt2, num_threads):
    bad = LONG[1] + "\ud800"
    with pytest.raises(UnicodeEncodeError, match="surrogates not allowed"):
        gpt2.encode_batch_flat(["fine", bad], num_threads=num_threads)


def test_short_calls_one_after_another_get_only_their_own_ids(gpt2, reference):
    # Texts of up to 16 KB are encoded into buffers a thread keeps between calls: each call,
    # long or short, of any width, after a failing one too, gets its own ids only, as a
    # list and as an array.
    texts = [SAMPLES[7] * 40, "a", SAMPLES[3] * 100, "", SAMPLES[4], "x" * 16_000 + "\u20ac", "ok"]
    for text in texts + texts[::-1]:
        want = reference.encode(text, disallowed_special=())
        assert gpt2.encode(text) == want
        assert gpt2.encode_to_array(text).tolist() == want
        with pytest.raises(UnicodeEncodeError):
            gpt2.encode_to_array("abc\ud800" + text)
