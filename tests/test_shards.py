"""A corpus in slices (issue #12): shards encoded one by one and joined equal the whole
file's ids; shard counts summed train the same vocabulary as the whole file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bpelm import Tokenizer, encode_file, train_bpe
from bpelm.cli import main
from bpelm.tokenizer.shards import (
    concat_token_arrays,
    count_shard,
    encode_shard,
    load_counts,
    parse_shard,
    save_counts,
    shard_range,
    train_from_counts,
)

EOT = "<|endoftext|>"
SAMPLE = Path(__file__).resolve().parent.parent / "python" / "bpelm" / "data" / "sample.txt"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Multibyte characters everywhere, so nominal shard boundaries fall inside characters.
    text = SAMPLE.read_text(encoding="utf-8")[:60_000]
    text = text.replace("e", "\u00e9").replace("o", "\u4e2d") + f"\n{EOT}\n"
    path = tmp_path_factory.mktemp("shards") / "corpus.txt"
    path.write_text(text * 2, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tok(corpus: Path) -> Tokenizer:
    return Tokenizer(*train_bpe(corpus, 400, [EOT]), [EOT])


@pytest.mark.parametrize("n", [1, 3, 7])
def test_shards_joined_equal_the_whole_file(corpus: Path, tok: Tokenizer, tmp_path: Path, n):
    whole = tmp_path / "whole.npy"
    encode_file(tok, corpus, whole)
    parts = []
    covered = 0
    for i in range(n):
        out = tmp_path / f"part{i}.npy"
        _, piece = encode_shard(tok, corpus, out, (i, n))
        assert piece.start == covered  # the shards tile the file
        covered = piece.stop
        parts.append(out)
    assert covered == corpus.stat().st_size
    joined = tmp_path / "joined.npy"
    assert concat_token_arrays(parts, joined) == len(np.load(whole))
    assert np.array_equal(np.load(joined), np.load(whole))
    assert not list(tmp_path.glob(".*"))  # no scratch copies left behind


def test_a_nominal_boundary_inside_a_character_is_moved(corpus: Path) -> None:
    data = corpus.read_bytes()
    nominal_inside = 0
    for n in (3, 7, 11):
        for i in range(1, n):
            nominal_inside += 0x80 <= data[len(data) * i // n] < 0xC0
            cut = shard_range(corpus, i, n, [EOT]).start
            assert not 0x80 <= data[cut] < 0xC0  # never inside a character
    assert nominal_inside  # the case is exercised


def test_summed_shard_counts_train_the_whole_files_vocabulary(corpus: Path, tmp_path: Path):
    files = []
    for i in range(3):
        path = tmp_path / f"counts{i}.json"
        save_counts(count_shard(corpus, (i, 3), [EOT]), [EOT], path)
        files.append(path)
    counts, specials, pattern = load_counts(files)
    assert specials == [EOT] and pattern == "gpt2"
    assert train_from_counts(counts, 400, specials) == train_bpe(corpus, 400, [EOT])


@pytest.mark.parametrize("pattern", ["cl100k", "o200k"])
def test_shards_with_a_split_pattern(corpus: Path, tmp_path: Path, pattern: str) -> None:
    # The shard cuts and the counts follow the pattern.
    files = []
    for i in range(3):
        path = tmp_path / f"counts{i}.json"
        save_counts(count_shard(corpus, (i, 3), [EOT], pattern), [EOT], path, pattern)
        files.append(path)
    counts, specials, recorded = load_counts(files)
    assert recorded == pattern
    trained = train_bpe(corpus, 400, [EOT], pattern=pattern)
    assert train_from_counts(counts, 400, specials) == trained
    tok = Tokenizer(*trained, [EOT], pattern)
    whole = tmp_path / "whole.npy"
    encode_file(tok, corpus, whole)
    parts = [tmp_path / f"part{i}.npy" for i in range(3)]
    for i, out in enumerate(parts):
        encode_shard(tok, corpus, out, (i, 3))
    concat_token_arrays(parts, tmp_path / "joined.npy")
    assert np.array_equal(np.load(tmp_path / "joined.npy"), np.load(whole))
    # Count files of different patterns do not add up.
    other = tmp_path / "gpt2.json"
    save_counts(count_shard(corpus, (0, 3), [EOT]), [EOT], other)
    with pytest.raises(ValueError, match="split pattern 'gpt2' differs"):
        load_counts([*files, other])


def test_shard_arguments_are_checked() -> None:
    assert parse_shard("2/5") == (2, 5)
    for bad in ("5/5", "-1/3", "1/0", "x", "1/2/3"):
        with pytest.raises(ValueError, match="--shard"):
            parse_shard(bad)


def test_the_commands(corpus: Path, tok: Tokenizer, tmp_path: Path) -> None:
    tok.save(tmp_path / "tok")
    parts = []
    for i in range(3):
        out = tmp_path / f"s{i}.npy"
        argv = ["tokenizer", "encode", "--tokenizer", str(tmp_path / "tok"), "--input"]
        assert main([*argv, str(corpus), "--out", str(out), "--shard", f"{i}/3"]) == 0
        parts.append(str(out))
        count = ["tokenizer", "count", "--input", str(corpus), "--shard", f"{i}/3"]
        assert main([*count, "--out", str(tmp_path / f"c{i}.json")]) == 0
    assert main(["tokenizer", "concat", "--out", str(tmp_path / "all.npy"), *parts]) == 0
    whole = tmp_path / "whole.npy"
    encode_file(tok, corpus, whole)
    assert np.array_equal(np.load(tmp_path / "all.npy"), np.load(whole))
    counts = [str(tmp_path / f"c{i}.json") for i in range(3)]
    argv = ["tokenizer", "train", "--counts", *counts, "--vocab-size", "400"]
    assert main([*argv, "--out", str(tmp_path / "from-counts")]) == 0
    assert Tokenizer.load(tmp_path / "from-counts") == tok
    # With a pattern: the count files record it, and training from them uses it.
    count = ["tokenizer", "count", "--input", str(corpus), "--pattern", "cl100k"]
    assert main([*count, "--out", str(tmp_path / "cl.json")]) == 0
    argv = ["tokenizer", "train", "--counts", str(tmp_path / "cl.json"), "--vocab-size", "400"]
    assert main([*argv, "--out", str(tmp_path / "cl")]) == 0
    assert Tokenizer.load(tmp_path / "cl") == Tokenizer(
        *train_bpe(corpus, 400, [EOT], pattern="cl100k"), [EOT], "cl100k"
    )
    assert main([*argv, "--pattern", "o200k", "--out", str(tmp_path / "no")]) == 1
