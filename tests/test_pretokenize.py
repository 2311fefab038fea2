"""The Rust pretokenizer against the GPT-2 pattern as the `regex` module and tiktoken apply it."""

from __future__ import annotations

import pytest
import regex
import tiktoken
from bpelm import _core
from bpelm.gpt2 import GPT2_PATTERN
from hypothesis import given, settings
from hypothesis import strategies as st

GPT2_RE = regex.compile(GPT2_PATTERN)

# tiktoken compiles the pattern with fancy-regex, whose classes come from regex-syntax 0.8
# (Unicode 16.0); the `regex` module here uses Unicode 17.0. The two disagree exactly on these
# code points (inclusive ranges), each assigned by Unicode 17.0 and unassigned in 16.0: the
# `regex` module sees letters or numbers where tiktoken (and bpelm) see unassigned "other"
# characters. The Rust test `version_differences_are_code_points_unassigned_in_our_tables`
# checks the 16.0 side; `test_disagreements_are_only_unicode_17_additions` the rest.
UNICODE_17_ADDITIONS = [
    (0x558, 0x558),
    (0x58B, 0x58C),
    (0x88F, 0x88F),
    (0xC5C, 0xC5C),
    (0xCDC, 0xCDC),
    (0x208F, 0x208F),
    (0x209D, 0x209F),
    (0xA7CE, 0xA7CF),
    (0xA7D2, 0xA7D2),
    (0xA7D4, 0xA7D4),
    (0xA7DD, 0xA7DD),
    (0xA7E2, 0xA7E2),
    (0xA7F1, 0xA7F1),
    (0xAB6C, 0xAB6D),
    (0x107BB, 0x107BF),
    (0x10940, 0x10959),
    (0x10EC5, 0x10EC7),
    (0x10ED9, 0x10EEE),
    (0x11B0A, 0x11B0A),
    (0x11DB0, 0x11DDB),
    (0x11DE0, 0x11DE9),
    (0x11DF1, 0x11DF1),
    (0x1246F, 0x1246F),
    (0x12475, 0x1247F),
    (0x12550, 0x12686),
    (0x16EA0, 0x16EB8),
    (0x16EBB, 0x16ED3),
    (0x16FF2, 0x16FF6),
    (0x187F8, 0x187FF),
    (0x18CD6, 0x18CDA),
    (0x18D09, 0x18D20),
    (0x18D80, 0x18DF2),
    (0x18E00, 0x19191),
    (0x191A0, 0x191D2),
    (0x1B123, 0x1B128),
    (0x1B168, 0x1B168),
    (0x1D6A6, 0x1D6A6),
    (0x1DF1F, 0x1DF24),
    (0x1DF2B, 0x1DF81),
    (0x1DF90, 0x1DF96),
    (0x1DFCD, 0x1DFFF),
    (0x1E6C0, 0x1E6DE),
    (0x1E6E0, 0x1E6E2),
    (0x1E6E4, 0x1E6E5),
    (0x1E6E7, 0x1E6ED),
    (0x1E6F0, 0x1E6F4),
    (0x1E6FE, 0x1E6FF),
    (0x2B73A, 0x2B73F),
    (0x2B81E, 0x2B81E),
    (0x2CEA2, 0x2CEAD),
    (0x323B0, 0x33479),
    (0x3D000, 0x3FC3F),
]


def _in_unicode_17_additions(c: str) -> bool:
    cp = ord(c)
    return any(start <= cp <= end for start, end in UNICODE_17_ADDITIONS)


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
any_char = st.characters(codec="utf-8").filter(lambda c: not _in_unicode_17_additions(c))

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
    assert all(_in_unicode_17_additions(c) for c in differing)
    # Every listed code point really differs, and the `regex` module has it assigned.
    assert len(differing) == sum(end - start + 1 for start, end in UNICODE_17_ADDITIONS)
    assert not any(regex.match(r"\p{Cn}", c) for c in differing)
