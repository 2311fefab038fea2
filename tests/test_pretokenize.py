"""The Rust pretokenizer against the GPT-2 pattern as the `regex` module and tiktoken apply it."""

from __future__ import annotations

import pytest
import regex
import tiktoken
from bpelm import _core
from bpelm.tokenizer.gpt2 import GPT2_PATTERN
from conftest import UNICODE_17_ADDITIONS, in_unicode_17_additions
from hypothesis import given, settings
from hypothesis import strategies as st

GPT2_RE = regex.compile(GPT2_PATTERN)

# tiktoken compiles the pattern with fancy-regex, whose classes come from regex-syntax 0.8
# (Unicode 16.0); the `regex` module here uses Unicode 17.0. The two disagree exactly on these
# code points (inclusive ranges), each assigned by Unicode 17.0 and unassigned in 16.0: the
# `regex` module sees letters or numbers where tiktoken (and bpelm) see unassigned "other"
# characters. The Rust test `version_differences_are_code_points_unassigned_in_our_tables`
# checks the 16.0 side; `test_disagreements_are_only_unicode_17_additions` the rest.


def oracle(text: str) -> list[str]:
    return GPT2_RE.findall(text)


def tiktoken_split(text: str) -> list[str]:
    """tiktoken's own pieces of `text`, made visible: with a vocabulary holding every piece
    of bpelm's split whole, tiktoken emits one token per piece when its split is the same,
    and byte-level fragments where it is not."""
    ranks = {bytes([i]): i for i in range(256)}
    for piece in _core.pretokenize(text):
        ranks.setdefault(piece.encode(), len(ranks))
    enc = tiktoken.Encoding(
        "bpelm-probe", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens={}
    )
    return [enc.decode_single_token_bytes(t).decode() for t in enc.encode_ordinary(text)]


def _probe(c: str) -> str:
    """A text in which the class of `c` decides the split."""
    return f"a{c}a {c}{c}1 {c}\n"


# Any Unicode scalar value outside the version gap (hypothesis already leaves out surrogates).
any_char = st.characters(codec="utf-8").filter(lambda c: not in_unicode_17_additions(c))

# Text made of the characters the pattern's alternatives turn on, so that contractions,
# whitespace look-ahead and the optional space meet often.
tricky_char = st.sampled_from(
    list(" '  \n\t\r\x0b\x0c\x1c\x1fsdmtlvreSDLVaZé中9٣½.,!?-")
    + ["\u00a0", "\u0085", "\u2028", "\u3000", "\u0301", "\U0001f600", "'s", "'ll", "  ", "\n\n"]
)


def test_examples() -> None:
    assert _core.pretokenize("") == []
    assert _core.pretokenize("Hello world, it's 2024!!") == [
        "Hello",
        " world",
        ",",
        " it",
        "'s",
        " 2024",
        "!!",
    ]
    assert _core.pretokenize("a   b\n\n") == ["a", "  ", " b", "\n\n"]
    # U+001C..U+001F are str.isspace() but not White_Space: they are not \s.
    assert _core.pretokenize("a \x1c b") == ["a", " \x1c", " b"]


@given(st.text(alphabet=any_char))
@settings(deadline=None)
def test_arbitrary_text_matches_regex(text: str) -> None:
    assert _core.pretokenize(text) == oracle(text)


@given(st.lists(tricky_char).map("".join))
@settings(max_examples=500, deadline=None)
def test_tricky_text_matches_regex(text: str) -> None:
    assert _core.pretokenize(text) == oracle(text)


@given(st.lists(st.one_of(tricky_char, any_char), max_size=200).map("".join))
@settings(deadline=None)
def test_mixed_text_matches_regex(text: str) -> None:
    pieces = _core.pretokenize(text)
    assert "".join(pieces) == text
    assert pieces == oracle(text)


@given(st.lists(st.one_of(tricky_char, st.characters(codec="utf-8")), max_size=100).map("".join))
@settings(max_examples=200, deadline=None)
def test_matches_tiktoken(text: str) -> None:
    # No exclusions here: tiktoken uses the same Unicode version as bpelm.
    assert _core.pretokenize(text) == tiktoken_split(text)


def test_code_points_match_tiktoken() -> None:
    # Every code point below U+3400 and a sample above, each in contexts where its class
    # decides the split (a full sweep agrees too, but takes most of a minute).
    cps = [*range(0x3400), *range(0x3400, 0x110000, 37)]
    chars = [chr(cp) for cp in cps if not 0xD800 <= cp < 0xE000]
    text = "".join(_probe(c) for c in chars)
    assert _core.pretokenize(text) == tiktoken_split(text)


def test_web_sample_matches_regex_and_tiktoken(web_sample: str) -> None:
    assert _core.pretokenize(web_sample) == oracle(web_sample)
    head = web_sample[:300_000]
    assert _core.pretokenize(head) == tiktoken_split(head)


@pytest.mark.slow
def test_disagreements_are_only_unicode_17_additions() -> None:
    chars = [chr(cp) for cp in range(0x110000) if not 0xD800 <= cp < 0xE000]
    differing = []
    for i in range(0, len(chars), 256):
        block = chars[i : i + 256]
        text = "".join(_probe(c) for c in block)
        if _core.pretokenize(text) != oracle(text):
            differing += [c for c in block if _core.pretokenize(_probe(c)) != oracle(_probe(c))]
    assert all(in_unicode_17_additions(c) for c in differing)
    # Every listed code point really differs, and the `regex` module has it assigned.
    assert len(differing) == sum(end - start + 1 for start, end in UNICODE_17_ADDITIONS)
    assert not any(regex.match(r"\p{Cn}", c) for c in differing)
