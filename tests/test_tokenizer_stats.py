"""`bpelm tokenizer stats` on the bundled sample corpus."""

from __future__ import annotations

from pathlib import Path

import pytest
from bpelm.cli import main
from bpelm.experiments.tokenizer_stats import (
    compression,
    longest_tokens,
    sample_documents,
    vocabulary_overlap,
)
from bpelm.tokenizer.corpus import load_tokenizer

SAMPLE = Path(__file__).resolve().parent.parent / "python" / "bpelm" / "data" / "sample.txt"


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tokstats")
    for size in (300, 600):
        argv = ["tokenizer", "train", "--input", str(SAMPLE), "--vocab-size", str(size)]
        assert main(argv + ["--out", str(d / f"tok{size}"), "--no-progress"]) == 0
    return d / "tok300", d / "tok600"


def test_stats_and_compare(tokenizers, capsys) -> None:
    small, large = tokenizers
    capsys.readouterr()
    argv = ["tokenizer", "stats", "--tokenizer", str(small), "--input", str(SAMPLE)]
    assert main(argv + ["--docs", "5", "--compare", str(large), "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "5 sampled of" in out and "bytes per token:" in out
    assert "longest tokens (10):" in out and "MB/s" in out and "the Pile (825 GB)" in out
    assert "vocabulary overlap" in out


def test_stats_library(tokenizers) -> None:
    small, large = map(load_tokenizer, tokenizers)
    text = SAMPLE.read_text(encoding="utf-8")
    docs = sample_documents(text, "<|endoftext|>", 8, seed=1)
    assert len(docs) == 8 and all("<|endoftext|>" not in d for d in docs)
    assert docs == sample_documents(text, "<|endoftext|>", 8, seed=1)  # seeded
    a, b = compression(small, docs), compression(large, docs)
    assert a.bytes == b.bytes == sum(len(d.encode()) for d in docs)
    assert b.bytes_per_token > a.bytes_per_token > 1.0  # a larger vocabulary compresses more
    longest = longest_tokens(large, 3)
    assert len(longest) == 3 and len(longest[0][1]) >= len(longest[2][1])
    both, share_small, share_large = vocabulary_overlap(small, large)
    assert both == 300 and share_small == 1.0  # BPE on the same text: the smaller is a prefix
    assert share_large == pytest.approx(300 / 600)
