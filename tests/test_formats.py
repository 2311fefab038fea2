"""HuggingFace `tokenizer.json` and tiktoken rank files, each way, checked against the
reference library: the same ids on the sample corpora."""

from __future__ import annotations

import base64
import json

import pytest
from bpelm import Tokenizer, train_bpe
from bpelm.tokenizer.gpt2 import GPT2_PATTERN, mergeable_ranks
from bpelm.tokenizer.tiktoken_ranks import merges_from_ranks

EOT = "<|endoftext|>"


@pytest.fixture(scope="module")
def gpt2() -> Tokenizer:
    return Tokenizer.gpt2()


@pytest.fixture(scope="module")
def texts(web_sample, books_sample) -> list[str]:
    """Corpus text cut into documents, with end-of-text tokens kept between some."""
    text = web_sample[:150_000] + EOT + books_sample[:150_000] + " é 🙂\r\n  \t x"
    return [text[i : i + 20_000] for i in range(0, len(text), 20_000)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, books_sample) -> Tokenizer:
    src = tmp_path_factory.mktemp("formats") / "train.txt"
    src.write_text(books_sample[:300_000], encoding="utf-8")
    vocab, merges = train_bpe(src, 800, [EOT])
    return Tokenizer(vocab, merges, [EOT])


def test_hf_json_written_by_bpelm_loads_in_tokenizers(gpt2, trained, texts, tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    for tok in (gpt2, trained):
        path = tmp_path / "tokenizer.json"
        tok.save_hf_json(path)
        hf = tokenizers.Tokenizer.from_file(str(path))
        for text in texts:
            assert hf.encode(text).ids == tok.encode(text, allowed_special="all")
        ids = tok.encode(texts[0], allowed_special="all")
        assert hf.decode(ids, skip_special_tokens=False) == texts[0]
        assert Tokenizer.from_hf_json(path) == tok


def test_hf_json_written_by_tokenizers_loads_in_bpelm(gpt2_files, texts, tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import decoders, models, pre_tokenizers

    hf = tokenizers.Tokenizer(models.BPE.from_file(*map(str, gpt2_files)))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    hf.add_special_tokens([EOT])
    path = tmp_path / "tokenizer.json"
    hf.save(str(path))
    ours = Tokenizer.from_hf_json(path)
    assert ours.special_tokens == [EOT] and ours.token_to_id(EOT) == 50256
    for text in texts:
        assert ours.encode(text, allowed_special="all") == hf.encode(text).ids
    assert ours == Tokenizer.gpt2()


def test_hf_json_other_pipelines_are_refused(gpt2, tmp_path):
    path = tmp_path / "tokenizer.json"
    gpt2.save_hf_json(path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["normalizer"] = {"type": "NFC"}
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ValueError, match="normalizer"):
        Tokenizer.from_hf_json(path)


def test_tiktoken_file_written_by_bpelm_loads_in_tiktoken(
    gpt2, trained, texts, tmp_path, monkeypatch
):
    tiktoken = pytest.importorskip("tiktoken")
    from tiktoken.load import load_tiktoken_bpe

    # tiktoken caches what it reads by path, under the temp folder: off, or a second file
    # at a path read before would be the first one.
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")
    for tok in (gpt2, trained):
        path = tmp_path / "ranks.tiktoken"
        tok.save_tiktoken(path)
        enc = tiktoken.Encoding(
            "round-trip",
            pat_str=GPT2_PATTERN,
            mergeable_ranks=load_tiktoken_bpe(str(path)),
            special_tokens=tok.special_tokens_map,
        )
        for text in texts:
            assert enc.encode(text, allowed_special="all") == tok.encode(
                text, allowed_special="all"
            )
        back = Tokenizer.from_tiktoken(path, tok.special_tokens_map)
        assert back == tok  # merges derived from the ranks are the trained ones, in order


def test_tiktoken_file_of_gpt2_loads_in_bpelm(gpt2_files, gpt2, texts, tmp_path):
    # Written as tiktoken.load.dump_tiktoken_bpe does (it needs blobfile, not installed),
    # from the ranks tiktoken's own gpt2 encoding is built on.
    ranks = mergeable_ranks(gpt2_files[0])
    path = tmp_path / "gpt2.tiktoken"
    with open(path, "wb") as f:
        for token, rank in sorted(ranks.items(), key=lambda x: x[1]):
            f.write(base64.b64encode(token) + b" " + str(rank).encode() + b"\n")
    ours = Tokenizer.from_tiktoken(path, {EOT: 50256})
    assert ours == gpt2
    for text in texts:
        assert ours.encode(text, allowed_special="all") == gpt2.encode(text, allowed_special="all")
    # Specials as a list take the next ids.
    assert Tokenizer.from_tiktoken(path, [EOT]).token_to_id(EOT) == 50256


def test_rank_file_errors(tmp_path):
    bad = tmp_path / "bad.tiktoken"
    bad.write_bytes(b"IQ== 0\nnot-base64!! 1\n")
    with pytest.raises(ValueError, match=":2:"):
        Tokenizer.from_tiktoken(bad)
    ranks = {bytes([b]): b for b in range(256)}
    ranks[b"abc"] = 256  # no "ab" or "bc" below it: tiktoken could never make it
    with pytest.raises(ValueError, match="not a merge"):
        merges_from_ranks(ranks)
    with pytest.raises(ValueError, match="single bytes"):
        merges_from_ranks({b"a": 0})
