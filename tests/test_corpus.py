"""Special-token splitting, chunking and corpus files, checked against simple oracles."""

from __future__ import annotations

import pytest
import regex
from bpelm import _core
from hypothesis import given, settings
from hypothesis import strategies as st

ENDOFTEXT = "<|endoftext|>"


def split_special_oracle(text: str, specials: list[str]) -> list[str | int]:
    """Leftmost match, longest among those starting at the same place."""
    if not specials:
        return [text] if text else []
    by_length = sorted(specials, key=len, reverse=True)
    pattern = regex.compile("|".join(regex.escape(s) for s in by_length))
    out: list[str | int] = []
    pos = 0
    for m in pattern.finditer(text):
        if m.start() > pos:
            out.append(text[pos : m.start()])
        out.append(specials.index(m.group()))
        pos = m.end()
    if pos < len(text):
        out.append(text[pos:])
    return out


# Small alphabets so that specials, near-misses and newlines meet often.
special_st = st.lists(
    st.text(alphabet="<|>abe\n ", min_size=1, max_size=6), max_size=4, unique=True
).map(lambda s: [ENDOFTEXT, *s])
text_st = st.lists(
    st.sampled_from(["a", "b", " ", "\n", "<", "|", ">", "e", "é", "中", ENDOFTEXT, "\n\n", "<|"]),
    max_size=60,
).map("".join)


def test_split_special_examples() -> None:
    assert _core.split_special("a<|endoftext|>b", [ENDOFTEXT]) == ["a", 0, "b"]
    assert _core.split_special("", [ENDOFTEXT]) == []
    assert _core.split_special("x<|endoftext|>", []) == ["x<|endoftext|>"]
    double = ENDOFTEXT * 2
    assert _core.split_special(ENDOFTEXT * 3, [ENDOFTEXT, double]) == [1, 0]


def test_split_special_rejects_bad_sets() -> None:
    with pytest.raises(ValueError, match="special token 1"):
        _core.split_special("x", ["<a>", ""])
    with pytest.raises(ValueError, match="<a>"):
        _core.split_special("x", ["<a>", "<b>", "<a>"])


@given(text_st, special_st)
@settings(max_examples=300)
def test_split_special_matches_oracle(text: str, specials: list[str]) -> None:
    assert _core.split_special(text, specials) == split_special_oracle(text, specials)
