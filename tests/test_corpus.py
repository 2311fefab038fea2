"""Special-token splitting, chunking and corpus files, checked against simple oracles."""

from __future__ import annotations

from pathlib import Path

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
@settings(max_examples=300, deadline=None)
def test_split_special_matches_oracle(text: str, specials: list[str]) -> None:
    assert _core.split_special(text, specials) == split_special_oracle(text, specials)


# ---- chunking -------------------------------------------------------------------------------


def units(text: str, specials: list[str]) -> list[str | int]:
    """What the encoder sees: pretokens of the ordinary text, and special-token indices."""
    out: list[str | int] = []
    for piece in _core.split_special(text, specials):
        out += _core.pretokenize(piece) if isinstance(piece, str) else [piece]
    return out


def merged_segments(pieces: list[str | int]) -> list[str | int]:
    """`split_special` output with neighbouring text pieces joined (undoing chunk cuts)."""
    out: list[str | int] = []
    for piece in pieces:
        if isinstance(piece, str) and out and isinstance(out[-1], str):
            out[-1] += piece
        else:
            out.append(piece)
    return out


def occurrences(data: bytes, specials: list[str]) -> list[tuple[int, int]]:
    """Every occurrence of every special token, overlapping ones included (byte spans)."""
    spans = []
    for s in specials:
        t = s.encode()
        start = data.find(t)
        while start != -1:
            spans.append((start, start + len(t)))
            start = data.find(t, start + 1)
    return spans


def is_space(c: str) -> bool:
    return regex.match(r"\s", c) is not None


def oracle_is_safe(data: bytes, specials: list[str], p: int) -> bool:
    """The documented safe-cut rule, restated over bytes (complete text, nothing follows)."""
    if not 0 < p < len(data):
        return False
    try:
        before, after = data[:p].decode(), data[p:].decode()
    except UnicodeDecodeError:
        return False
    if any(s < p < e for s, e in occurrences(data, specials)):
        return False
    # A token whose beginning the text ends with could still complete: no cut inside it.
    for tok in specials:
        t = tok.encode()
        if any(t.startswith(data[q:]) for q in range(max(0, p - len(t) + 1), p)):
            return False
    if any(after.startswith(s) for s in specials):
        return True
    return (
        before.endswith("\n")
        and not is_space(after[0])
        and (len(before) == 1 or not is_space(before[-2]))
    )


def cuts_of(ranges: list[tuple[int, int]]) -> list[int]:
    return [end for _, end in ranges[:-1]]


def test_chunk_ranges_examples() -> None:
    text = "one\ntwo\nthree\n  four\n\nfive"
    assert cuts_of(_core.chunk_ranges(text, [], 1)) == [4, 8]
    assert _core.chunk_ranges(text, [], 1000) == [(0, len(text))]
    assert _core.chunk_ranges("", [], 10) == [(0, 0)]
    # Byte offsets, not character offsets.
    text = "é\nb<|endoftext|>c"
    assert cuts_of(_core.chunk_ranges(text, [ENDOFTEXT], 1)) == [3, 4]


@given(text_st, special_st, st.integers(min_value=1, max_value=40))
@settings(max_examples=300, deadline=None)
def test_chunks_change_nothing(text: str, specials: list[str], target: int) -> None:
    data = text.encode()
    ranges = _core.chunk_ranges(text, specials, target)
    # The ranges cover the text exactly, in order.
    assert ranges[0][0] == 0 and ranges[-1][1] == len(data)
    assert all(a[1] == b[0] and a[0] < a[1] for a, b in zip(ranges, ranges[1:]))
    chunks = [data[a:b].decode() for a, b in ranges]
    # Each cut is a safe place, none is inside a special token, and the chunk before it is
    # at least `target` bytes long.
    for (start, end), cut in zip(ranges, cuts_of(ranges)):
        assert oracle_is_safe(data, specials, cut)
        assert not any(s < cut < e for s, e in occurrences(data, specials))
        assert end - start >= target
    # Chunk by chunk, the encoder sees exactly what it sees in the whole.
    assert [u for c in chunks for u in units(c, specials)] == units(text, specials)
    pieces = [p for c in chunks for p in _core.split_special(c, specials)]
    assert merged_segments(pieces) == _core.split_special(text, specials)


@given(text_st, special_st, st.data())
@settings(max_examples=300, deadline=None)
def test_safe_split_before(text: str, specials: list[str], data: st.DataObject) -> None:
    raw = text.encode()
    pos = data.draw(st.integers(min_value=0, max_value=len(raw) + 2))
    p = _core.safe_split_before(text, specials, pos)
    # The greatest position the documented rule allows.
    allowed = [q for q in range(1, min(pos, len(raw)) + 1) if oracle_is_safe(raw, specials, q)]
    assert p == (allowed[-1] if allowed else None)
    if p is None:
        return
    # The cut stays safe whatever text comes after the buffer.
    suffix = data.draw(text_st)
    whole = text + suffix
    left, right = raw[:p].decode(), raw[p:].decode() + suffix
    assert units(left, specials) + units(right, specials) == units(whole, specials)


def test_chunks_of_real_text(web_sample: str) -> None:
    text = web_sample[:500_000]
    ranges = _core.chunk_ranges(text, [ENDOFTEXT], 20_000)
    assert len(ranges) > 10
    data = text.encode()
    chunks = [data[a:b].decode() for a, b in ranges]
    assert [u for c in chunks for u in units(c, [ENDOFTEXT])] == units(text, [ENDOFTEXT])


# ---- files ----------------------------------------------------------------------------------


def test_read_corpus(tmp_path: Path) -> None:
    path = tmp_path / "ok.txt"
    text = "héllo\n<|endoftext|>\n中文 😀\n" * 1000
    path.write_text(text, encoding="utf-8")
    assert _core.read_corpus(str(path)) == text
    assert _core.read_corpus(path) == text


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    assert _core.read_corpus(path) == ""


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "no-such-file.txt"
    with pytest.raises(FileNotFoundError, match="no-such-file.txt"):
        _core.read_corpus(path)


@pytest.mark.parametrize(
    ("prefix", "bad"),
    [
        (b"", b"\xff"),
        (b"abc", b"\xc3("),
        ("h\u00e9llo".encode(), b"\xe4\xb8"),  # a truncated character at the very end
        ("\u00e9\u4e2d".encode() * 700_000, b"\x80abc"),  # past the first parallel block
    ],
)
def test_invalid_utf8_names_file_and_offset(tmp_path: Path, prefix: bytes, bad: bytes) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(prefix + bad + b"tail\n")
    with pytest.raises(UnicodeDecodeError) as python_error:
        (prefix + bad + b"tail\n").decode("utf-8")
    offset = python_error.value.start
    assert offset == len(prefix)
    with pytest.raises(ValueError, match=f"bad.txt.*byte offset {offset}$"):
        _core.read_corpus(path)
