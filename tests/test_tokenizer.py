"""Tokenizer behaviour: round trips, special tokens, files, bad input, streaming, batches."""

from __future__ import annotations

import json
import os
from unittest import mock

import bpelm.tokenizer.tokenizer as tokenizer_module
import numpy as np
import pytest
from bpelm import Tokenizer
from hypothesis import given, settings
from hypothesis import strategies as st

EOT = "<|endoftext|>"

# Hand-made merges: "the", " the", "he", "ll", "hello" and digits "12".
TINY_MERGES = [
    (b"t", b"h"), (b"th", b"e"), (b" ", b"the"), (b"h", b"e"), (b"l", b"l"), (b"he", b"ll"),
    (b"hell", b"o"), (b"1", b"2"),
]  # fmt: skip


def tiny_vocab() -> dict[int, bytes]:
    vocab = {i: bytes([i]) for i in range(256)}
    for left, right in TINY_MERGES:
        vocab[len(vocab)] = left + right
    return vocab


@pytest.fixture(scope="module")
def gpt2(gpt2_files) -> Tokenizer:
    return Tokenizer.from_files(*gpt2_files, special_tokens=[EOT])


@pytest.fixture(scope="module")
def tiny() -> Tokenizer:
    return Tokenizer(tiny_vocab(), TINY_MERGES, [EOT])


def tokens_of(tok: Tokenizer, text: str) -> list[bytes]:
    vocab = tok.vocab
    return [vocab[i] for i in tok.encode(text, allowed_special="all")]


def test_tiny_hand_computed(tiny):
    assert tokens_of(tiny, "the hello") == [b"the", b" ", b"hello"]
    assert tokens_of(tiny, " the theme") == [b" the", b" the", b"m", b"e"]
    assert tokens_of(tiny, "hell 123") == [b"hell", b" ", b"12", b"3"]
    assert tiny.vocab_size == 256 + len(TINY_MERGES) + 1
    assert tiny.token_to_id(EOT) == tiny.vocab_size - 1 == tiny.eot_id


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_round_trip(gpt2, tiny, text):
    assert gpt2.decode(gpt2.encode(text, allowed_special="all")) == text
    assert tiny.decode(tiny.encode(text, allowed_special="all")) == text
    assert tiny.decode_bytes(tiny.encode(text)) == text.encode("utf-8")


def test_round_trip_corpus(gpt2, tinystories_sample):
    assert gpt2.decode(gpt2.encode(tinystories_sample, allowed_special="all")) == tinystories_sample


def test_decode_replaces_invalid_utf8(gpt2):
    # The first byte of a 3-byte character alone is not UTF-8.
    first_byte = gpt2.token_to_id(b"\xe4")
    assert gpt2.decode([first_byte]) == "\ufffd"
    assert gpt2.decode_bytes([first_byte]) == b"\xe4"


def test_special_tokens_longest_match_first():
    double = EOT + EOT
    for specials in ([EOT, double], [double, EOT]):
        tok = Tokenizer(tiny_vocab(), TINY_MERGES, specials)
        d, s = tok.token_to_id(double), tok.token_to_id(EOT)
        assert tok.encode(double, allowed_special="all") == [d]
        assert tok.encode(EOT, allowed_special="all") == [s]
        assert tok.encode(double + EOT + "the", allowed_special="all") == [
            d,
            s,
            tok.token_to_id("the"),
        ]


def test_special_tokens_only_come_from_their_text(gpt2):
    eot = gpt2.token_to_id(EOT)
    assert gpt2.encode(EOT, allowed_special="all") == [eot]
    assert eot not in gpt2.encode("<|endoftext| > endoftext <|endoftext", allowed_special="all")
    assert gpt2.encode("a" + EOT + "b", allowed_special="all").count(eot) == 1


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="<|endoftext|> \n"))
def test_special_never_from_merges(gpt2, text):
    ids = gpt2.encode(text, allowed_special="all")
    assert ids.count(gpt2.token_to_id(EOT)) == text.count(EOT)


def test_special_missing_from_vocab_is_appended(tiny):
    tok = Tokenizer(tiny_vocab(), TINY_MERGES, ["<pad>", EOT])
    assert tok.vocab_size == len(tiny_vocab()) + 2
    assert tok.token_to_id("<pad>") == len(tiny_vocab())
    assert tok.encode("a<pad>", allowed_special="all") == [ord("a"), len(tiny_vocab())]
    # A special that is already a token keeps its id.
    tok = Tokenizer(tiny_vocab(), TINY_MERGES, ["the"])
    assert tok.vocab_size == len(tiny_vocab())
    assert tok.encode("the", allowed_special="all") == [tok.token_to_id(b"the")]


def test_save_and_load_round_trip(tmp_path, tiny):
    vocab_path, merges_path = tmp_path / "vocab.json", tmp_path / "merges.txt"
    tiny.save(vocab_path, merges_path)
    meta = json.loads((tmp_path / "bpelm.json").read_text())
    assert meta["special_tokens"] == [EOT]
    back = Tokenizer.from_files(vocab_path, merges_path)
    assert back.vocab == tiny.vocab
    assert back.merges == tiny.merges == TINY_MERGES
    assert back.special_tokens == [EOT]
    text = "the hello " + EOT + " 1234"
    assert back.encode(text, allowed_special="all") == tiny.encode(text, allowed_special="all")
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_gpt2_files_load(gpt2, gpt2_files, tmp_path):
    assert gpt2.vocab_size == 50257
    assert gpt2.token_to_id(EOT) == 50256
    assert gpt2.token_to_id(" the") == 262
    assert len(gpt2.merges) == 50000
    # Writing and reading back keeps every token and merge.
    gpt2.save(tmp_path / "vocab.json", tmp_path / "merges.txt")
    back = Tokenizer.from_files(tmp_path / "vocab.json", tmp_path / "merges.txt")
    assert back.vocab == gpt2.vocab and back.merges == gpt2.merges
    assert json.loads((tmp_path / "vocab.json").read_text()) == json.loads(
        gpt2_files[0].read_text()
    )


def write_files(tmp_path, vocab_text: str, merges_text: str):
    (tmp_path / "vocab.json").write_text(vocab_text, encoding="utf-8")
    (tmp_path / "merges.txt").write_text(merges_text, encoding="utf-8")
    return tmp_path / "vocab.json", tmp_path / "merges.txt"


def good_vocab_json(tmp_path) -> str:
    Tokenizer(tiny_vocab(), TINY_MERGES).save(tmp_path / "vocab.json", tmp_path / "merges.txt")
    return (tmp_path / "vocab.json").read_text(encoding="utf-8")


def test_malformed_vocab_json_names_the_line(tmp_path):
    lines = good_vocab_json(tmp_path).splitlines()
    lines[3] = lines[3].replace(":", "")  # line 4 loses its colon
    paths = write_files(tmp_path, "\n".join(lines), "")
    with pytest.raises(ValueError, match=r"vocab\.json:4:\d+: "):
        Tokenizer.from_files(*paths)


def test_malformed_merges_name_the_line(tmp_path):
    vocab_text = good_vocab_json(tmp_path)
    paths = write_files(tmp_path, vocab_text, "#version: 0.2\nt h\nth e x\n")
    with pytest.raises(ValueError, match=r"merges\.txt:3: .*two tokens"):
        Tokenizer.from_files(*paths)
    paths = write_files(tmp_path, vocab_text, "t h\nq z\n")
    with pytest.raises(ValueError, match=r"merges\.txt:2: .*qz.* not in the vocabulary"):
        Tokenizer.from_files(*paths)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.json"):
        Tokenizer.from_files(tmp_path / "nothing.json", tmp_path / "merges.txt")


def test_decode_rejects_bad_ids(tiny):
    n = tiny.vocab_size
    with pytest.raises(KeyError, match=str(n)):
        tiny.decode([1, n])
    with pytest.raises(KeyError, match="-1"):
        tiny.decode([-1])
    with pytest.raises(TypeError, match="int"):
        tiny.decode(["a"])


def test_bad_arguments():
    with pytest.raises(ValueError, match="empty"):
        Tokenizer(tiny_vocab(), TINY_MERGES, [""])
    with pytest.raises(ValueError, match="twice"):
        Tokenizer(tiny_vocab(), TINY_MERGES, [EOT, EOT])
    with pytest.raises(TypeError):
        Tokenizer(list(tiny_vocab().values()), TINY_MERGES)
    with pytest.raises(TypeError, match="bytes"):
        Tokenizer({**tiny_vocab(), 300: "str"}, TINY_MERGES)
    with pytest.raises(TypeError, match="single string"):
        Tokenizer(tiny_vocab(), TINY_MERGES, EOT)
    with pytest.raises(ValueError, match="merge 0"):
        Tokenizer(tiny_vocab(), [(b"x", b"y")])
    with pytest.raises(ValueError, match="unused ids below it"):
        Tokenizer({i: bytes([i]) for i in range(256)} | {300_000: b"ab"}, [])
    # A few unused ids are fine (tiktoken's special tokens leave some): they decode to a
    # KeyError naming the id.
    gapped = Tokenizer({i: bytes([i]) for i in range(256)} | {300: b"ab"}, [])
    assert gapped.vocab_size == 301 and 299 not in gapped.vocab
    with pytest.raises(KeyError, match="token id 299 is unused"):
        gapped.decode([299])
    tok = Tokenizer(tiny_vocab(), TINY_MERGES)
    with pytest.raises(TypeError, match="str"):
        tok.encode(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="texts\\[1\\]"):
        tok.encode_batch(["a", 1])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="single str"):
        tok.encode_batch("abc")
    with pytest.raises(KeyError):
        tok.token_to_id("not a token")


def test_encode_batch_equals_encode(gpt2, web_sample):
    docs = web_sample[:300_000].split(EOT)
    docs = [d + EOT for d in docs] + ["", " ", "x"]
    assert gpt2.encode_batch(docs, num_threads=2, allowed_special="all") == [
        gpt2.encode(d, allowed_special="all") for d in docs
    ]
    assert gpt2.encode_batch(docs, allowed_special="all") == gpt2.encode_batch(
        docs, num_threads=1, allowed_special="all"
    )


pieces = st.lists(st.sampled_from(["a", " ", "  ", "\n", "\n\n", "x1", "'s", "!", "é", EOT, "<|"]))


@settings(max_examples=150, deadline=None)
@given(text=st.one_of(st.text(), pieces.map("".join)), cuts=st.lists(st.integers(0, 10**6)))
def test_encode_iterable_equals_encode(gpt2, text, cuts):
    bounds = sorted({c % (len(text) + 1) for c in cuts})
    parts = [text[a:b] for a, b in zip([0, *bounds], [*bounds, len(text)])]
    # A tiny flush threshold makes every few characters a flush attempt.
    with mock.patch.object(tokenizer_module, "_FLUSH_CHARS", 3):
        assert list(gpt2.encode_iterable(parts, allowed_special="all")) == gpt2.encode(
            text, allowed_special="all"
        )


def test_encode_iterable_on_lines(gpt2, web_sample):
    text = web_sample[:400_000]
    with mock.patch.object(tokenizer_module, "_FLUSH_CHARS", 10_000):
        streamed = list(gpt2.encode_iterable(text.splitlines(keepends=True), allowed_special="all"))
    assert streamed == gpt2.encode(text, allowed_special="all")


def test_encode_iterable_rejects_non_str(gpt2):
    with pytest.raises(TypeError, match="item 1"):
        list(gpt2.encode_iterable(["a", b"b"]))


@pytest.mark.slow
def test_encode_iterable_memory_is_bounded(gpt2, web_sample, tmp_path):
    psutil = pytest.importorskip("psutil")
    path = tmp_path / "big.txt"
    block = web_sample[:1_000_000]
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(60):
            f.write(block)
    size = path.stat().st_size
    # The text repeats with period `block`, so its token count follows from two blocks.
    one, two = (
        len(gpt2.encode(block, allowed_special="all")),
        len(gpt2.encode(block * 2, allowed_special="all")),
    )
    expected = one + 59 * (two - one)
    proc = psutil.Process()
    count = 0
    peak = start = proc.memory_info().rss
    with open(path, encoding="utf-8") as f:
        for count, _ in enumerate(gpt2.encode_iterable(f, allowed_special="all"), 1):  # noqa: B007
            if count % 200_000 == 0:
                peak = max(peak, proc.memory_info().rss)
    assert count == expected
    growth = peak - start
    # Holding the file's text or its tokens would cost well over its size (60 MB).
    message = f"RSS grew by {growth / 2**20:.1f} MiB on a {size / 2**20:.0f} MiB file"
    assert growth < 40 * 2**20, message


def test_repr_and_properties(gpt2):
    assert "50257" in repr(gpt2)
    assert gpt2.special_tokens == [EOT]
    assert gpt2.eot_id == 50256


def assert_flat_equals_batch(tok: Tokenizer, texts: list[str], num_threads: int | None) -> None:
    ids, offsets = tok.encode_batch_flat(texts, num_threads=num_threads, allowed_special="all")
    assert ids.dtype == np.uint32 and offsets.dtype == np.int64
    assert len(offsets) == len(texts) + 1 and offsets[0] == 0 and offsets[-1] == len(ids)
    got = [ids[a:b].tolist() for a, b in zip(offsets[:-1], offsets[1:])]
    assert got == tok.encode_batch(texts, num_threads=1, allowed_special="all")


@settings(max_examples=100, deadline=None)
@given(
    texts=st.lists(st.one_of(st.text(max_size=50), pieces.map("".join)), max_size=12),
    num_threads=st.sampled_from([None, 1, 2]),
)
def test_encode_batch_flat_equals_encode_batch(gpt2, texts, num_threads):
    assert_flat_equals_batch(gpt2, texts, num_threads)


@pytest.fixture(scope="module")
def big_text(books_sample, web_sample) -> str:
    """Over 1 MB, so `encode_batch_flat` cuts it into pieces encoded in parallel."""
    text = books_sample[:700_000] + EOT + web_sample[:700_000] + EOT
    assert len(text.encode()) > 1_300_000
    return text


@settings(max_examples=8, deadline=None)
@given(
    texts=st.lists(pieces.map("".join), max_size=6),
    at=st.integers(0, 6),
    num_threads=st.sampled_from([1, 2]),
)
def test_encode_batch_flat_splits_big_texts_exactly(gpt2, big_text, texts, at, num_threads):
    texts.insert(min(at, len(texts)), big_text)
    assert_flat_equals_batch(gpt2, texts, num_threads)


def test_encode_batch_flat_big_text_alone(gpt2, big_text):
    ids, offsets = gpt2.encode_batch_flat([big_text], num_threads=2, allowed_special="all")
    assert offsets.tolist() == [0, len(ids)]
    assert ids.tolist() == gpt2.encode(big_text, allowed_special="all")


def test_encode_batch_flat_bad_arguments(tiny):
    with pytest.raises(TypeError, match="texts\\[1\\]"):
        tiny.encode_batch_flat(["a", b"b"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="single str"):
        tiny.encode_batch_flat("abc")
    with pytest.raises(ValueError, match="num_threads"):
        tiny.encode_batch_flat(["a"], num_threads=0)
    with pytest.raises(TypeError):
        tiny._core.encode_batch_flat(["a", 1])  # type: ignore[list-item]
    ids, offsets = tiny.encode_batch_flat([])
    assert len(ids) == 0 and offsets.tolist() == [0]
