"""The vocabulary API users of tiktoken and HF `tokenizers` expect (issue #15): sizes, single
tokens, batches, equality, pickling for worker processes, copies, one-call save/load."""

from __future__ import annotations

import copy
import gc
import multiprocessing
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
from bpelm import Tokenizer, train_bpe

EOT = "<|endoftext|>"
TEXT = "The cat sat on the mat. The dog sat on the log. " * 40 + "caf\u00e9 \u20ac \U0001f600 "


@pytest.fixture(scope="module")
def tok(tmp_path_factory: pytest.TempPathFactory) -> Tokenizer:
    path = tmp_path_factory.mktemp("api") / "corpus.txt"
    path.write_text((TEXT + EOT) * 5, encoding="utf-8")
    vocab, merges = train_bpe(path, 330, [EOT])
    return Tokenizer(vocab, merges, [EOT])


def test_sizes(tok: Tokenizer) -> None:
    # The corpus runs out of pairs before 330: 256 bytes + 30 merges + the special token.
    assert tok.n_vocab == len(tok) == tok.vocab_size == 256 + len(tok.merges) + 1


def test_single_tokens_round_trip(tok: Tokenizer) -> None:
    for i in range(tok.vocab_size):
        raw = tok.decode_single_token_bytes(i)
        assert raw == tok.vocab[i]
        token = tok.id_to_token(i)
        assert token == (raw.decode("utf-8") if isinstance(token, str) else raw)
        assert tok.token_to_id(token) == i
    assert tok.id_to_token(tok.eot_id) == EOT
    assert isinstance(tok.id_to_token(0xE2), bytes)  # a lone lead byte is no character
    with pytest.raises(KeyError):
        tok.decode_single_token_bytes(tok.vocab_size)


def test_decode_batch(tok: Tokenizer) -> None:
    texts = ["The cat", "", "caf\u00e9 \U0001f600"]
    assert tok.decode_batch([tok.encode(t) for t in texts]) == texts


def test_vocab_is_a_cached_read_only_view(tok: Tokenizer) -> None:
    assert tok.vocab is tok.vocab
    with pytest.raises(TypeError):
        tok.vocab[0] = b"x"  # type: ignore[index]
    t0 = time.perf_counter()
    for i in range(10_000):
        tok.vocab[i % tok.vocab_size]
    assert time.perf_counter() - t0 < 0.5  # a copy per lookup would take seconds


def test_equality(tok: Tokenizer) -> None:
    same = Tokenizer(dict(tok.vocab), tok.merges, [EOT])
    assert same == tok and same is not tok
    assert Tokenizer(dict(tok.vocab), tok.merges, []) != tok  # specials differ
    assert Tokenizer(dict(tok.vocab), tok.merges[:-1], [EOT]) != tok  # merges differ
    assert tok != "not a tokenizer"
    with pytest.raises(TypeError):
        hash(tok)


def test_pickle_and_copies(tok: Tokenizer) -> None:
    back = pickle.loads(pickle.dumps(tok))
    assert back == tok and back.encode(TEXT + EOT, allowed_special="all") == tok.encode(
        TEXT + EOT, allowed_special="all"
    )
    for clone in (copy.copy(tok), copy.deepcopy(tok)):
        assert clone == tok and clone.encode(TEXT) == tok.encode(TEXT)


def _encode_in_worker(args: tuple[Tokenizer, str]) -> list[int]:
    tokenizer, text = args
    return tokenizer.encode(text)


def test_a_process_pool_gets_a_working_tokenizer(tok: Tokenizer) -> None:
    # spawn pickles the tokenizer into fresh interpreters, as datasets.map(num_proc=...) and
    # multiprocessing on macOS/Windows do.
    texts = [TEXT[i:] for i in range(0, 400, 50)]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        got = pool.map(_encode_in_worker, [(tok, t) for t in texts])
    assert got == [tok.encode(t) for t in texts]


def test_save_and_load_a_directory(tok: Tokenizer, tmp_path: Path) -> None:
    out = tmp_path / "new" / "tok"  # created, parents too
    tok.save(out)
    assert sorted(p.name for p in out.iterdir()) == ["bpelm.json", "merges.txt", "vocab.json"]
    back = Tokenizer.load(out)
    assert back == tok and back.special_tokens == [EOT]
    with pytest.raises(FileNotFoundError, match="not a tokenizer directory"):
        Tokenizer.load(tmp_path / "missing")


@pytest.mark.parametrize(
    "bad, error, message",
    [
        (0, ValueError, "num_threads must be at least 1, or None for one thread per CPU; got 0"),
        (-3, ValueError, "num_threads must be at least 1, or None for one thread per CPU; got -3"),
        ("2", TypeError, "num_threads must be an int or None, not str"),
        (True, TypeError, "num_threads must be an int or None, not bool"),
    ],
)
def test_one_rule_for_num_threads_everywhere(tok: Tokenizer, tmp_path: Path, bad, error, message):
    # The core checks num_threads, so every call that takes it answers the same.
    from bpelm import encode_file

    text = tmp_path / "t.txt"
    text.write_text(TEXT)
    calls = [
        lambda: tok.encode_batch(["a"], num_threads=bad),
        lambda: tok.encode_batch_flat(["a"], num_threads=bad),
        lambda: encode_file(tok, text, tmp_path / "t.npy", num_threads=bad),
        lambda: train_bpe(text, 300, num_threads=bad),
    ]
    for call in calls:
        with pytest.raises(error) as raised:
            call()
        assert str(raised.value) == message


@pytest.mark.parametrize("words", [0, 1, 50, 4000, 4100, 20_000])
def test_encode_to_array_is_a_writable_uint32_copy_of_encode(tok: Tokenizer, words: int) -> None:
    """A few ids are copied into a fresh array, many handed over in the core's own buffer
    (the switch is at 4096 ids): the same array either way."""
    text = " ".join(f"w{i % 97}" for i in range(words))
    want = tok.encode(text)
    got = tok.encode_to_array(text)
    assert got.dtype == np.uint32 and got.ndim == 1
    assert got.tolist() == want
    assert got.flags.writeable
    if len(want):
        got[0] = 7  # writable, and the copy is the caller's own
        assert tok.encode_to_array(text).tolist() == want


@pytest.mark.parametrize("words", [1000, 40_000])
def test_a_long_list_holds_one_reference_to_its_int_per_place(words: int) -> None:
    """Short lists take each int's reference as they are filled; long ones (from 65,536 ids)
    count an int's places first and take them together. Either way the list holds exactly
    one reference per place, and freeing it gives back as many: no leak, none missing."""
    import sys

    tok = Tokenizer.gpt2()
    text = " ".join(f"w{i % 97}" for i in range(words))
    array = tok.encode_to_array(text)
    assert (len(array) >= 65_536) == (words == 40_000)
    # A frequent id of 256 or more: smaller ints are CPython's shared ones, immortal
    # from 3.12. Its int, as the tokenizer hands it out, from a call of one token.
    values, counts = np.unique(array[array >= 256], return_counts=True)
    common, places = int(values[counts.argmax()]), int(counts.max())
    one = tok.encode(tok.decode([common]))[0]
    assert one == common
    before = sys.getrefcount(one)
    ids = tok.encode(text)
    assert sys.getrefcount(one) - before == places
    assert ids == array.tolist()
    del ids
    gc.collect()
    assert sys.getrefcount(one) == before


def test_arrays_own_the_ids_they_were_handed() -> None:
    """An array made from the core's vector keeps it: it outlives the tokenizer, and a
    batch's offsets are numpy's index type."""
    tok = Tokenizer.gpt2()
    text = " ".join(f"w{i % 97}" for i in range(20_000))
    want = tok.encode(text)
    one = tok.encode_to_array(text)
    ids, offsets = tok.encode_batch_flat([text, "a b", ""], num_threads=2)
    del tok
    gc.collect()
    assert one.tolist() == want
    assert ids.dtype == np.uint32 and offsets.dtype == np.int64
    assert offsets.tolist() == [0, len(want), len(want) + 2, len(want) + 2]
    assert ids[: len(want)].tolist() == want
