"""The Rust BPE trainer against the slow reference trainer, plus its contract and errors."""

from __future__ import annotations

import doctest
import tempfile
from pathlib import Path

import pytest
from bpelm import _core, train_bpe
from bpelm.tokenizer import reference
from bpelm.tokenizer.reference import learn_merges, train_bpe_reference
from conftest import shared_file
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EOT = "<|endoftext|>"


def write(tmp_path: Path, text: str, name: str = "corpus.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def assert_same_as_reference(
    text: str, vocab_size: int, specials: list[str], num_threads: int | None = None
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp), text)
        vocab, merges = train_bpe(path, vocab_size, specials, num_threads=num_threads)
    ref_vocab, ref_merges = train_bpe_reference(text, vocab_size, specials)
    assert merges == ref_merges
    assert vocab == ref_vocab


# ---------------------------------------------------------------------------- merge loop alone


def test_reference_examples() -> None:
    # The reference's docstring examples are hand-computed; they check the oracle itself.
    result = doctest.testmod(reference)
    assert result.attempted >= 5 and result.failed == 0


# Few distinct bytes (one of them multi-byte in UTF-8) so that ties are everywhere.
small_words = st.dictionaries(
    st.text(alphabet="ab é", min_size=1, max_size=8).map(lambda s: s.encode("utf-8")),
    st.integers(min_value=1, max_value=4),
    max_size=12,
)


@given(words=small_words, n_merges=st.integers(min_value=0, max_value=30))
@settings(max_examples=300, deadline=None)
def test_merge_loop_matches_reference(words: dict[bytes, int], n_merges: int) -> None:
    assert _core._learn_merges(list(words.items()), n_merges) == learn_merges(words, n_merges)


def test_merge_loop_hand_example() -> None:
    # Sennrich et al.'s example; first step: (e, s) and (s, t) both count 9, (s, t) is greater.
    words = {b"low": 5, b"lower": 2, b"newest": 6, b"widest": 3}
    expect = [(b"s", b"t"), (b"e", b"st"), (b"o", b"w"), (b"l", b"ow"), (b"w", b"est")]
    assert _core._learn_merges(list(words.items()), 5) == expect
    assert learn_merges(words, 5) == expect


# ------------------------------------------------------------------ whole trainer vs reference

pieces = st.sampled_from(["a", "b", "ab", " ", "  ", "\n", "é", "1", "'s", "!", EOT, "<|"])


@given(parts=st.lists(pieces, max_size=60), extra=st.integers(min_value=0, max_value=25))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_matches_reference_on_generated_text(parts: list[str], extra: int) -> None:
    text = "".join(parts)
    assert_same_as_reference(text, 257 + extra, [EOT])


# Unassigned code points are left out: the `regex` module's Unicode tables are newer than the
# scanner's, and code points assigned since (e.g. U+3D000, a letter to `regex`) would differ.
assigned_text = st.text(st.characters(exclude_categories=["Cn", "Cs"]), max_size=200)


@given(text=assigned_text, extra=st.integers(min_value=0, max_value=20))
@settings(max_examples=100, deadline=None)
def test_matches_reference_on_arbitrary_text(text: str, extra: int) -> None:
    assert_same_as_reference(text, 256 + extra, [])


def test_matches_reference_on_tinystories() -> None:
    text = shared_file("tinystories_sample.txt").read_text(encoding="utf-8")
    assert_same_as_reference(text, 500, [EOT])


def test_matches_reference_on_web_text(web_sample: str) -> None:
    assert_same_as_reference(web_sample[:300_000], 800, [EOT])


@pytest.mark.slow
def test_matches_reference_on_books(books_sample: str) -> None:
    assert_same_as_reference(books_sample[:1_000_000], 2000, [EOT])


# ----------------------------------------------------------------------------- the rules


def test_ties_go_to_the_greatest_byte_pair(tmp_path: Path) -> None:
    # Pretokens "ab", " cd", " ef": every pair counts 1. The greatest pairs go first:
    # (e, f) > (c, d) > (a, b) > (" ", "ef") > (" ", "cd").
    _, merges = train_bpe(write(tmp_path, "ab cd ef"), 256 + 10)
    assert merges == [(b"e", b"f"), (b"c", b"d"), (b"a", b"b"), (b" ", b"ef"), (b" ", b"cd")]


def test_no_merge_across_special_tokens(tmp_path: Path) -> None:
    # The special token's own bytes and the pairs around it would win if they were counted.
    text = f"q{EOT}" * 50 + "ab"
    vocab, merges = train_bpe(write(tmp_path, text), 256 + 10 + 1, [EOT])
    assert merges == [(b"a", b"b")]
    assert len(vocab) == 256 + 1 + 1
    # Without it declared special, its bytes do get merged.
    _, merges = train_bpe(write(tmp_path, text), 256 + 3)
    assert (b"a", b"b") not in merges


def test_no_merge_across_pretokens(tmp_path: Path) -> None:
    # Pretokens "a", " a", " a", ...: (a, " ") is never adjacent inside one pretoken.
    _, merges = train_bpe(write(tmp_path, "a a a a a a"), 256 + 10)
    assert merges == [(b" ", b"a")]


def test_vocab_composition(tmp_path: Path) -> None:
    specials = [EOT, "<pad>"]
    text = shared_file("tinystories_sample.txt").read_text(encoding="utf-8")
    vocab, merges = train_bpe(write(tmp_path, text), 300, specials)
    assert len(vocab) == 300 and len(merges) == 300 - 256 - 2
    assert sorted(vocab) == list(range(300))
    assert all(vocab[i] == bytes([i]) for i in range(256))
    for i, (left, right) in enumerate(merges):
        assert vocab[256 + i] == left + right
    assert vocab[298] == EOT.encode() and vocab[299] == b"<pad>"


def test_runs_out_of_pairs(tmp_path: Path) -> None:
    vocab, merges = train_bpe(write(tmp_path, "abc abc"), 1000, [EOT])
    # Pretokens "abc" and " abc": (b, c) beats (a, b) on the tie; then nothing is left.
    assert merges == [(b"b", b"c"), (b"a", b"bc"), (b" ", b"abc")]
    assert len(vocab) == 256 + 3 + 1 and vocab[259] == EOT.encode()


def test_empty_file(tmp_path: Path) -> None:
    vocab, merges = train_bpe(write(tmp_path, ""), 300, [EOT])
    assert merges == [] and len(vocab) == 257


def test_thread_counts_agree(web_sample: str, tmp_path: Path) -> None:
    path = write(tmp_path, web_sample[:1_000_000])
    one = train_bpe(path, 600, [EOT], num_threads=1)
    two = train_bpe(path, 600, [EOT], num_threads=2)
    assert one == two


# ---------------------------------------------------------------------------------- errors


def test_vocab_size_too_small(tmp_path: Path) -> None:
    path = write(tmp_path, "hello")
    with pytest.raises(ValueError, match="at least 256 \\+ 1 special tokens = 257"):
        train_bpe(path, 256, [EOT])
    with pytest.raises(ValueError, match="vocab_size 255 is too small"):
        _core.train_bpe(str(path), 255, [])


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        train_bpe(missing, 300)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(b"hello \xff world")
    with pytest.raises(ValueError, match="offset 6"):
        train_bpe(path, 300)


@pytest.mark.parametrize("specials", [[""], [EOT, EOT]])
def test_bad_special_tokens(tmp_path: Path, specials: list[str]) -> None:
    with pytest.raises(ValueError):
        train_bpe(write(tmp_path, "hello"), 300, specials)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"num_threads": 0}, ValueError),
        ({"num_threads": 1.5}, TypeError),
        ({"vocab_size": "300"}, TypeError),
        ({"vocab_size": -1}, ValueError),
        ({"special_tokens": [b"<|endoftext|>"]}, TypeError),
        ({"special_tokens": "<|endoftext|>"}, TypeError),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict, error: type) -> None:
    args = {"input_path": write(tmp_path, "hello"), "vocab_size": 300, **kwargs}
    with pytest.raises(error):
        train_bpe(**args)
