"""Split patterns (issue #17): GPT-4's cl100k and GPT-4o's o200k, custom regexes, the
`Tokenizer.cl100k()` / `Tokenizer.o200k()` presets and tiktoken rank files.

The reference is tiktoken itself, built offline: tiktoken's own constructors in
`tiktoken_ext.openai_public` (its pattern strings and special tokens) given the ranks of
`../shared/data/tiktoken/*.tiktoken.gz` (OpenAI's rank files, whose sha256 is tiktoken's
pinned hash) instead of downloading them. Texts: the sample corpora of conftest.py (web and
books), `../shared/data/tinystories_sample.txt` (real TinyStories stories, the one public
CS336 fixture available offline: the full TinyStories and the OpenWebText sample that CS336's
tests use cannot be downloaded here), hypothesis with arbitrary Unicode, and hand-picked
pieces that each alternative of the patterns turns on. Tests that need `../shared` skip,
naming it, where it is absent. Nothing here uses the network: the download of the presets
runs against `file://` URLs and a local HTTP server.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import gzip
import hashlib
import http.server
import json
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import regex
from bpelm import Tokenizer, _core, encode_file, train_bpe
from bpelm.cli import main
from bpelm.download import DownloadError
from bpelm.tokenizer import presets
from bpelm.tokenizer.reference import train_bpe_reference
from conftest import in_unicode_17_additions, shared_file
from hypothesis import given, settings
from hypothesis import strategies as st

tiktoken = pytest.importorskip("tiktoken")

EOT = "<|endoftext|>"
NAMES = ["cl100k", "o200k"]


def rank_file(name: str) -> Path:
    return shared_file(f"tiktoken/{name}_base.tiktoken.gz")


def plain_ranks(name: str) -> bytes:
    return gzip.decompress(rank_file(name).read_bytes())


def parse(data: bytes) -> dict[bytes, int]:
    """A rank file's tokens, read here rather than by bpelm's reader."""
    pairs = (line.split() for line in data.splitlines() if line)
    return {base64.b64decode(token): int(rank) for token, rank in pairs}


def tiktoken_reference(name: str):
    """tiktoken's own encoding `NAME_base` (pattern, special tokens), with the ranks read
    from the shared file instead of downloaded."""
    from tiktoken_ext import openai_public

    ranks = parse(plain_ranks(name))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(openai_public, "load_tiktoken_bpe", lambda *args, **kwargs: ranks)
        params = getattr(openai_public, f"{name}_base")()
    return tiktoken.Encoding(**params)


@pytest.fixture(scope="module")
def encodings() -> dict[str, tuple[Tokenizer, object]]:
    """Per pattern name: bpelm's preset (from the shared rank file) and tiktoken's encoding.
    Loaded once for the module (a few seconds: o200k has 200,000 ranks)."""
    return {
        name: (getattr(Tokenizer, name)(path=rank_file(name)), tiktoken_reference(name))
        for name in NAMES
    }


@pytest.fixture(params=NAMES)
def pair(request, encodings):
    return encodings[request.param]


# ------------------------------------------------------------------------ parity with tiktoken

# Pieces each alternative of the three patterns turns on: cased scripts (title case ǅ), marks
# (U+0301 a Mn, U+0903 an Mc), modifier letters (ʰ: Lm, in both of o200k's letter classes),
# digits of other scripts (Arabic-Indic ٣, superscript ², Roman numeral Ⅻ: Nd, No, Nl),
# contractions in both cases and with ſ (which case-folds to s), CRLF, whitespace runs,
# `/` after punctuation and newlines (o200k's `[\r\n/]*`).
TRICKY = [
    " ", "  ", "\t", "\n", "\r\n", "\r", "\n\n\n", "   \n", " \t \n ", "\u00a0", "\u3000",
    "\u2028", "\x0b", "\x1c", "\x85", "a", "Z", "the", " The", "HELLO", "Hello", "hELLO",
    "Ελληνικά", " ΑΘΗΝΑ", "Привет", " МИР", "ǅemal", "ǅ", "ǈ", "e\u0301", "\u0301",
    "\u0915\u0903", "\u0903", "ʰ", "aʰb", "ˈ", "٣", "²", "Ⅻ", "１２３", "1", "12", "123",
    "1234", "1234567", " 42", "3.14", "'s", "'S", "'t", "'T", "'ll", "'LL", "'Ll", "'ve",
    "'VE", "'re", "'RE", "'m", "'M", "'d", "'D", "'ſ", "ſ", "don't", "DON'T", "I'M", "'",
    "''", "/", "/\n", "\n/", "a/b", "!/", "...", "?!\n", "--", " (", ")", ",\r\n", "\U0001f600",
    "\U0001f468\u200d\U0001f469", "中文", "日本語", "\u0645\u0631\u062d\u0628\u0627",
    "\ufffd", "\x00", "_", "a_b", "ß", "ﬁ", "İ", EOT, "<|endofprompt|>", "<|fim_prefix|>",
]  # fmt: skip
tricky_text = st.lists(st.sampled_from(TRICKY), max_size=30).map("".join)
any_text = st.one_of(st.text(), tricky_text, st.text(alphabet="\n\r\t 0123456789'sStT/ſ.a"))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("sample", ["web_sample", "books_sample", "tinystories_sample"])
def test_corpora_match_tiktoken(encodings, name, sample, request):
    ours, ref = encodings[name]
    text = request.getfixturevalue(sample)
    expected = ref.encode(text, allowed_special="all")
    assert ours.encode(text, allowed_special="all") == expected
    assert ours.encode_to_array(text, allowed_special="all").tolist() == expected
    docs = text.split(EOT)[:200]
    assert ours.encode_batch(docs) == ref.encode_batch(docs, num_threads=1)


BASELINE_CHILD = """
import json, sys
import numpy as np
from bpelm import Tokenizer, _core
texts = json.loads(open(sys.argv[1], encoding="utf-8").read())
out = {"build": _core.vector_build()}
for name, ranks in json.loads(sys.argv[2]).items():
    tok = Tokenizer.gpt2() if name == "gpt2" else getattr(Tokenizer, name)(path=ranks)
    out[name] = [tok.encode_to_array(t, allowed_special="all").tolist() for t in texts]
print(json.dumps(out))
"""


def test_the_baseline_build_gives_the_same_ids(encodings, web_sample, books_sample, tmp_path):
    """The pretoken scanners run in a build chosen by the processor (`_core.vector_build()`:
    AVX2 where it is there, else the baseline); every other test here runs the chosen one.
    This one runs the baseline build in a child process (`BPELM_NO_AVX2=1`) and checks its
    ids against tiktoken's, and GPT-2's against this process's build."""
    assert _core.vector_build() in ("avx2", "baseline")
    web = web_sample[:300_000]
    texts = [web, web.replace("\n", "\r\n"), books_sample[:300_000], "".join(TRICKY) * 3]
    (tmp_path / "texts.json").write_text(json.dumps(texts), encoding="utf-8")
    ranks = {"gpt2": "", **{name: str(rank_file(name)) for name in NAMES}}
    env = {**os.environ, "BPELM_NO_AVX2": "1"}
    child = subprocess.run(
        [sys.executable, "-c", BASELINE_CHILD, str(tmp_path / "texts.json"), json.dumps(ranks)],
        env=env, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    got = json.loads(child.stdout)
    assert got["build"] == "baseline"
    for name in NAMES:
        ref = encodings[name][1]
        assert got[name] == [ref.encode(t, allowed_special="all") for t in texts], name
    gpt2 = Tokenizer.gpt2()
    assert got["gpt2"] == [gpt2.encode(t, allowed_special="all") for t in texts]


def test_the_shared_tinystories_sample_has_specials(tinystories_sample):
    assert tinystories_sample.count(EOT) >= 5  # so the corpus test above exercises them


@settings(max_examples=250, deadline=None)
@given(text=any_text)
def test_arbitrary_text_matches_tiktoken(encodings, text):
    for ours, ref in encodings.values():
        assert ours.encode(text, allowed_special="all") == ref.encode(text, allowed_special="all")
        assert ours.encode_ordinary(text) == ref.encode_ordinary(text)


def test_tricky_pieces_match_tiktoken(pair):
    ours, ref = pair
    for piece in TRICKY:
        for text in (piece, f"x{piece}y", f" {piece}{piece} ", f"{piece}\n{piece}"):
            assert ours.encode(text, allowed_special="all") == ref.encode(
                text, allowed_special="all"
            ), repr(text)
    every = "".join(TRICKY) + " ".join(TRICKY) + "\n".join(TRICKY)
    assert ours.encode(every, allowed_special="all") == ref.encode(every, allowed_special="all")


def test_long_runs_match_tiktoken(pair):
    ours, ref = pair
    for text in ["7" * 10_000, " " * 5000 + "x", "\n" * 5000, " \n" * 3000, "a" * 20_000]:
        assert ours.encode(text) == ref.encode(text)


def _probe(c: str) -> str:
    """A text in which the class of `c` decides the split."""
    return f"a{c}a {c}{c}1 {c}\n'{c}{c}A/{c}"


def test_code_points_match_tiktoken(pair):
    # Every code point below U+3400 and every 37th above, each where its class matters.
    ours, ref = pair
    cps = [*range(0x3400), *range(0x3400, 0x110000, 37)]
    text = "".join(_probe(chr(cp)) for cp in cps if not 0xD800 <= cp < 0xE000)
    assert ours.encode_ordinary(text) == ref.encode_ordinary(text)


def test_specials_and_policies_match_tiktoken(pair):
    ours, ref = pair
    specials = list(ref.special_tokens_set)
    text = "a" + "b ".join(specials) + " c"
    assert ours.encode(text, allowed_special="all") == ref.encode(text, allowed_special="all")
    assert ours.encode(text, disallowed_special=()) == ref.encode(text, disallowed_special=())
    one = {EOT}
    assert ours.encode(text, allowed_special=one, disallowed_special=()) == ref.encode(
        text, allowed_special=one, disallowed_special=()
    )
    with pytest.raises(ValueError):
        ours.encode(text)


# ---------------------------------------------------------------- the pretokens, against regex


# The `regex` module has Unicode 17.0 tables, bpelm (and tiktoken) 16.0: characters assigned
# in between are left out here (test_pretokenize.py lists them and checks the GPT-2 side).
any_char = st.characters(codec="utf-8").filter(lambda c: not in_unicode_17_additions(c))
PATTERNS = ["gpt2", "cl100k", "o200k"]
COMPILED = {name: regex.compile(_core.split_pattern(name)[1]) for name in PATTERNS}


def test_the_regexes_are_tiktokens():
    from tiktoken_ext import openai_public

    assert _core.split_pattern("cl100k_base") == _core.split_pattern("cl100k")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(openai_public, "load_tiktoken_bpe", lambda *args, **kwargs: {})
        for name in ("cl100k", "o200k"):
            pat_str = getattr(openai_public, f"{name}_base")()["pat_str"]
            assert _core.split_pattern(pat_str) == (name, pat_str)


@pytest.mark.parametrize("name", PATTERNS)
@settings(max_examples=150, deadline=None)
@given(text=st.lists(st.one_of(any_char, st.sampled_from(TRICKY)), max_size=60).map("".join))
def test_pretokens_match_regex(name, text):
    assert _core.pretokenize(text, name) == COMPILED[name].findall(text)


@pytest.mark.parametrize("name", PATTERNS)
def test_pretokens_of_corpora_match_regex(name, web_sample, tinystories_sample):
    for text in (web_sample[:400_000], tinystories_sample, "".join(TRICKY)):
        assert _core.pretokenize(text, name) == COMPILED[name].findall(text)


def test_pattern_examples():
    text = "I'M 12345 don't\r\n\n  x/\n"
    assert _core.pretokenize(text, "cl100k") == [
        "I", "'M", " ", "123", "45", " don", "'t", "\r\n\n", " ", " x", "/\n",
    ]  # fmt: skip
    assert _core.pretokenize(text, "o200k") == [
        "I'M", " ", "123", "45", " don't", "\r\n\n", " ", " x", "/\n",
    ]  # fmt: skip
    assert _core.pretokenize("HelloWorld", "o200k") == ["Hello", "World"]


# ------------------------------------------------------------------------------------ training

TRAIN_EXTRA = "It's 2024: I'LL pay 1234567 dollars.\r\n\r\nDON'T    stop/\nNaïve ǅemal Αθήνα!\n"


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory, tinystories_sample, web_sample) -> Path:
    text = tinystories_sample[:20_000] + TRAIN_EXTRA * 20 + web_sample[:60_000]
    path = tmp_path_factory.mktemp("patterns") / "corpus.txt"
    path.write_bytes(text.encode("utf-8"))  # as is: TRAIN_EXTRA's CRLF stays
    return path


def read(path: Path) -> str:
    return path.read_bytes().decode("utf-8")  # read_text would turn CRLF into LF


@pytest.mark.parametrize("name", ["cl100k", "o200k"])
def test_training_with_a_pattern_matches_the_reference(small_corpus, name, tmp_path):
    text = read(small_corpus)
    vocab, merges = train_bpe(small_corpus, 700, [EOT], pattern=name)
    assert (vocab, merges) == train_bpe_reference(text, 700, [EOT], pattern=name)
    assert merges != train_bpe(small_corpus, 700, [EOT])[1]  # the pattern made a difference
    tok = Tokenizer(vocab, merges, [EOT], pattern=name)
    assert tok.pattern == name
    assert tok.decode(tok.encode(text, allowed_special="all")) == text
    tok.save(tmp_path / "tok")
    assert json.loads((tmp_path / "tok" / "bpelm.json").read_text())["pattern"] == name
    back = Tokenizer.load(tmp_path / "tok")
    assert back == tok and back.pattern == name
    assert back.encode(text, allowed_special="all") == tok.encode(text, allowed_special="all")


def test_the_train_command_takes_a_pattern(small_corpus, tmp_path, capsys):
    out = tmp_path / "tok"
    argv = ["tokenizer", "train", "--input", str(small_corpus), "--vocab-size", "600"]
    assert main([*argv, "--pattern", "cl100k", "--out", str(out)]) == 0
    assert "split pattern cl100k" in capsys.readouterr().out
    tok = Tokenizer.load(out)
    assert tok.pattern == "cl100k"
    assert tok == Tokenizer(*train_bpe(small_corpus, 600, [EOT], pattern="cl100k"), [EOT], "cl100k")
    # Encoding with the saved tokenizer uses its pattern.
    npy = tmp_path / "ids.npy"
    assert main(["tokenizer", "encode", "--tokenizer", str(out), "--input", str(small_corpus)]
                + ["--out", str(npy)]) == 0  # fmt: skip
    text = read(small_corpus)
    assert np.load(npy).tolist() == tok.encode(text, allowed_special="all")
    assert main([*argv, "--pattern", "cl100", "--out", str(out)]) == 1
    assert "unknown split pattern" in capsys.readouterr().err
    assert "--pattern" in main_help(["tokenizer", "train", "--help"], capsys)


def main_help(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit):
        main(argv)
    return capsys.readouterr().out


def test_encode_file_uses_the_pattern(encodings, tinystories_sample, tmp_path):
    tok = encodings["cl100k"][0]
    src = tmp_path / "small.txt"
    text = tinystories_sample[:8000] + TRAIN_EXTRA
    src.write_bytes(text.encode("utf-8"))
    encode_file(tok, src, tmp_path / "ids.npy", dtype="uint32")
    assert np.load(tmp_path / "ids.npy").tolist() == tok.encode(text, allowed_special="all")
    assert tok.encode(text, allowed_special="all") != Tokenizer.gpt2().encode(
        text, allowed_special="all"
    )


# ------------------------------------------------------------------------------- custom regexes

# Words, single digits and runs of punctuation; spaces match nothing, so they are the text
# between matches, which bpelm keeps as pretokens of their own.
CUSTOM = r"\p{L}+|\p{N}|[^\s\p{L}\p{N}]+"


def test_a_custom_regex_end_to_end(small_corpus, tmp_path):
    assert _core.pretokenize("ab  12,x", CUSTOM) == ["ab", "  ", "1", "2", ",", "x"]
    text = read(small_corpus)
    vocab, merges = train_bpe(small_corpus, 600, [EOT], pattern=CUSTOM)
    assert (vocab, merges) == train_bpe_reference(text, 600, [EOT], pattern=CUSTOM)
    tok = Tokenizer(vocab, merges, [EOT], pattern=CUSTOM)
    assert tok.pattern == tok.pattern_regex == CUSTOM
    assert repr(CUSTOM) in repr(tok)
    ids = tok.encode(text, allowed_special="all")
    assert tok.decode(ids) == text
    tok.save(tmp_path / "tok")
    back = Tokenizer.load(tmp_path / "tok")
    assert back == tok and back.pattern == CUSTOM
    for clone in (pickle.loads(pickle.dumps(tok)), copy.copy(tok), copy.deepcopy(tok)):
        assert clone == tok and clone.pattern == CUSTOM
    assert Tokenizer(vocab, merges, [EOT]) != tok  # the same tokens split otherwise
    # The CLI takes a regex too.
    argv = ["tokenizer", "train", "--input", str(small_corpus), "--vocab-size", "600"]
    assert main([*argv, "--pattern", CUSTOM, "--out", str(tmp_path / "cli")]) == 0
    assert Tokenizer.load(tmp_path / "cli") == tok


def test_bad_patterns_are_refused_with_the_reason(small_corpus, tmp_path):
    vocab = {i: bytes([i]) for i in range(256)}
    with pytest.raises(ValueError, match="unknown split pattern.*gpt2, cl100k and o200k"):
        Tokenizer(vocab, [], pattern="cl100")
    with pytest.raises(ValueError, match="(?i)parenthesis"):
        Tokenizer(vocab, [], pattern="(ab")
    with pytest.raises(ValueError, match="unknown split pattern"):
        train_bpe(small_corpus, 300, pattern="gpt3")
    with pytest.raises(ValueError, match="not a pattern bpelm can run: .*end of string"):
        train_bpe(small_corpus, 300, pattern="[a-z]+)")
    with pytest.raises(TypeError, match="pattern must be a str"):
        Tokenizer(vocab, [], pattern=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="pattern must be a str"):
        train_bpe(small_corpus, 300, pattern=3)  # type: ignore[arg-type]


# --------------------------------------------------------------------- files record the pattern


def test_files_record_the_pattern(tmp_path):
    vocab = {i: bytes([i]) for i in range(256)} | {256: b"12"}
    tok = Tokenizer(vocab, [(b"1", b"2")], [EOT], pattern="cl100k")
    tok.save(tmp_path)
    meta = json.loads((tmp_path / "bpelm.json").read_text())
    assert meta["pattern"] == "cl100k"
    files = (tmp_path / "vocab.json", tmp_path / "merges.txt")
    assert Tokenizer.from_files(*files).pattern == "cl100k"
    assert Tokenizer.from_files(*files, pattern="cl100k_base") == tok  # the same pattern
    with pytest.raises(ValueError, match=r"pattern='o200k'.*'cl100k'.*bpelm.json"):
        Tokenizer.from_files(*files, pattern="o200k")
    with pytest.raises(ValueError, match="pattern='gpt2'.*'cl100k'"):
        Tokenizer.from_files(*files, [EOT], pattern="gpt2")  # specials given: still checked
    # A file written before patterns: GPT-2's.
    del meta["pattern"]
    (tmp_path / "bpelm.json").write_text(json.dumps(meta))
    assert Tokenizer.load(tmp_path).pattern == "gpt2"
    with pytest.raises(ValueError, match="differs"):
        Tokenizer.from_files(*files, pattern="cl100k")
    # No bpelm.json at all: the pattern asked for, else GPT-2's.
    (tmp_path / "bpelm.json").unlink()
    assert Tokenizer.from_files(*files, [EOT]).pattern == "gpt2"
    assert Tokenizer.from_files(*files, [EOT], pattern="o200k").pattern == "o200k"
    meta["pattern"] = "(bad"
    (tmp_path / "bpelm.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"bpelm.json: split pattern '\(bad'"):
        Tokenizer.load(tmp_path)


def test_pattern_in_equality_repr_and_pickle():
    vocab = {i: bytes([i]) for i in range(256)}
    a, b = Tokenizer(vocab, [], pattern="o200k"), Tokenizer(vocab, [], pattern="o200k_base")
    assert a == b and a != Tokenizer(vocab, [])
    assert "pattern='o200k'" in repr(a)
    assert pickle.loads(pickle.dumps(a)).pattern == "o200k"
    assert copy.deepcopy(a).pattern == copy.copy(a).pattern == "o200k"
    assert a.pattern_regex == _core.split_pattern("o200k")[1]
    assert Tokenizer.gpt2().pattern == "gpt2"


# ---------------------------------------------------------- the presets: ids, gaps, rank files


def test_presets_have_tiktokens_specials_and_sizes(pair):
    ours, ref = pair
    assert ours.vocab_size == ours.n_vocab == ref.n_vocab
    assert ours.special_tokens_map == ref._special_tokens
    assert ours.eot_id == ref.eot_token
    used = set(ours.vocab)
    unused = [i for i in range(ours.vocab_size) if i not in used]
    assert unused  # tiktoken's specials leave gaps
    assert len(used) == len(ref._mergeable_ranks) + len(ref._special_tokens)
    for i in unused[:3] + unused[-1:]:
        with pytest.raises(KeyError, match=f"token id {i} is unused"):
            ours.decode([i])
        with pytest.raises(KeyError):
            ours.decode_single_token_bytes(i)
    with pytest.raises(KeyError):
        ours.decode([ours.vocab_size])
    for token, i in ref._special_tokens.items():
        assert ours.token_to_id(token) == i and ours.decode([i]) == token


def test_presets_save_and_load(encodings, tmp_path):
    ours = encodings["cl100k"][0]
    ours.save(tmp_path / "tok")
    back = Tokenizer.load(tmp_path / "tok")
    assert back == ours and back.vocab_size == 100277 and back.pattern == "cl100k"
    ours.save_tiktoken(tmp_path / "ranks.tiktoken")
    assert (tmp_path / "ranks.tiktoken").read_bytes() == plain_ranks("cl100k")


def test_rank_files_plain_or_gzipped_by_content(small_corpus, tmp_path):
    tok = Tokenizer(*train_bpe(small_corpus, 600, [EOT], pattern="cl100k"), [EOT], "cl100k")
    tok.save_tiktoken(tmp_path / "ranks.tiktoken")
    # Named the other way round on purpose: the first bytes decide, not the suffix.
    plain, zipped = tmp_path / "plain.tiktoken.gz", tmp_path / "zipped.tiktoken"
    plain.write_bytes((tmp_path / "ranks.tiktoken").read_bytes())
    zipped.write_bytes(gzip.compress(plain.read_bytes()))
    for path in (plain, zipped):
        assert Tokenizer.from_tiktoken(path, [EOT], pattern="cl100k") == tok
        assert Tokenizer.from_tiktoken(path, pattern="o200k").pattern == "o200k"
    assert Tokenizer.from_tiktoken(zipped, [EOT]).pattern == "gpt2"  # the files hold none
    with pytest.raises(ValueError, match="id 100 is the rank of"):
        Tokenizer.from_tiktoken(zipped, {EOT: 100})
    broken = tmp_path / "broken.tiktoken"
    broken.write_bytes(zipped.read_bytes()[:100])
    with pytest.raises(ValueError, match="not a readable gzip file"):
        Tokenizer.from_tiktoken(broken)
    with pytest.raises(ValueError, match="unknown split pattern"):
        Tokenizer.from_tiktoken(plain, pattern="cl100")


def test_a_preset_path_is_checked_against_the_pin(tmp_path):
    wrong = tmp_path / "o200k_base.tiktoken"
    wrong.write_bytes(plain_ranks("cl100k"))
    actual = hashlib.sha256(plain_ranks("cl100k")).hexdigest()
    with pytest.raises(ValueError) as e:
        Tokenizer.o200k(path=wrong)
    message = str(e.value)
    assert str(wrong) in message and actual in message
    assert presets.PRESETS["o200k"].sha256 in message


def test_the_pins_are_tiktokens():
    import inspect

    from tiktoken_ext import openai_public

    source = inspect.getsource(openai_public)
    for preset in presets.PRESETS.values():
        assert preset.url in source and preset.sha256 in source
    assert hashlib.sha256(plain_ranks("cl100k")).hexdigest() == presets.PRESETS["cl100k"].sha256
    assert hashlib.sha256(plain_ranks("o200k")).hexdigest() == presets.PRESETS["o200k"].sha256


# ------------------------------------------------------ the presets' download (no network used)


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("BPELM_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "tiktoken"


def _serve_from(monkeypatch, url: str) -> None:
    """Point the cl100k preset at `url`."""
    preset = presets.PRESETS["cl100k"]
    monkeypatch.setitem(presets.PRESETS, "cl100k", dataclasses.replace(preset, url=url))


def test_cache_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("BPELM_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert presets.cache_dir() == tmp_path / "xdg" / "bpelm"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert presets.cache_dir() == tmp_path / "home" / ".cache" / "bpelm"
    monkeypatch.setenv("BPELM_CACHE_DIR", str(tmp_path / "mine"))
    assert presets.cache_dir() == tmp_path / "mine"


def test_the_preset_is_downloaded_once_and_cached(encodings, cache, tmp_path, monkeypatch, capsys):
    served = tmp_path / "served" / "cl100k_base.tiktoken"
    served.parent.mkdir()
    served.write_bytes(plain_ranks("cl100k"))
    _serve_from(monkeypatch, served.as_uri())
    tok = Tokenizer.cl100k()
    assert tok == encodings["cl100k"][0]
    assert "downloading" in capsys.readouterr().err
    assert sorted(p.name for p in cache.iterdir()) == ["cl100k_base.tiktoken"]
    assert (cache / "cl100k_base.tiktoken").read_bytes() == served.read_bytes()
    # From the cache: the URL is not used again.
    _serve_from(monkeypatch, (tmp_path / "gone.tiktoken").as_uri())
    preset = presets.PRESETS["cl100k"]
    assert presets.rank_file_bytes(preset) == served.read_bytes()
    # A damaged cached file is not used: it is downloaded again.
    (cache / "cl100k_base.tiktoken").write_bytes(b"IQ== 0\n")
    _serve_from(monkeypatch, served.as_uri())
    assert presets.rank_file_bytes(presets.PRESETS["cl100k"], log=lambda _: None) == (
        served.read_bytes()
    )


def test_a_download_with_the_wrong_hash_leaves_nothing(cache, tmp_path, monkeypatch):
    served = tmp_path / "cl100k_base.tiktoken"
    served.write_bytes(plain_ranks("cl100k")[:-10])
    _serve_from(monkeypatch, served.as_uri())
    with pytest.raises(DownloadError, match="sha256 is [0-9a-f]{64}, expected 223921b7"):
        presets.rank_file_bytes(presets.PRESETS["cl100k"], log=lambda _: None)
    assert not list(cache.iterdir())


def test_a_failed_download_leaves_nothing(cache, tmp_path, monkeypatch):
    _serve_from(monkeypatch, (tmp_path / "missing.tiktoken").as_uri())
    with pytest.raises(DownloadError, match="missing.tiktoken"):
        presets.rank_file_bytes(presets.PRESETS["cl100k"], log=lambda _: None)
    assert not cache.exists() or not list(cache.iterdir())


class CutServer(http.server.ThreadingHTTPServer):
    """Announces 100,000 bytes, sends 1,000 and closes: a download cut short."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), CutHandler)


class CutHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self.wfile.write(b"x" * 1000)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def cut_server() -> Iterator[str]:
    srv = CutServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/cl100k_base.tiktoken"
    srv.shutdown()
    srv.server_close()


def test_an_interrupted_download_leaves_nothing(cache, cut_server, monkeypatch):
    _serve_from(monkeypatch, cut_server)
    with pytest.raises(DownloadError, match="127.0.0.1"):
        presets.rank_file_bytes(presets.PRESETS["cl100k"], timeout=10, log=lambda _: None)
    assert not list(cache.iterdir())  # no .part kept to resume: the file is small


# ----------------------------------------------------------------- HuggingFace tokenizer.json


@pytest.fixture(scope="module")
def hf_presets(encodings, tmp_path_factory) -> dict[str, tuple[Path, object]]:
    """Per pattern name: the `tokenizer.json` bpelm wrote for its preset, and `tokenizers`'
    tokenizer loaded from it."""
    tokenizers = pytest.importorskip("tokenizers")
    out = {}
    for name, (ours, _) in encodings.items():
        path = tmp_path_factory.mktemp("hf") / f"{name}.json"
        ours.save_hf_json(path)
        out[name] = (path, tokenizers.Tokenizer.from_file(str(path)))
    return out


def test_hf_json_of_the_presets_gives_tiktokens_ids(
    encodings, hf_presets, web_sample, books_sample, tinystories_sample
):
    texts = [web_sample[:200_000], books_sample[:200_000], tinystories_sample, "".join(TRICKY)]
    for name, (path, hf) in hf_presets.items():
        ref = encodings[name][1]
        for text in texts:
            assert hf.encode(text).ids == ref.encode(text, allowed_special="all"), name
        # The pre-tokenizer as tokenizers itself writes it.
        written = json.loads(path.read_text(encoding="utf-8"))["pre_tokenizer"]
        assert json.loads(hf.to_str())["pre_tokenizer"] == written
        assert [p["type"] for p in written["pretokenizers"]] == ["Split", "ByteLevel"]
    path = hf_presets["cl100k"][0]
    back = Tokenizer.from_hf_json(path)
    assert back == encodings["cl100k"][0] and back.pattern == "cl100k"


@settings(max_examples=150, deadline=None)
@given(text=any_text)
def test_hf_json_of_the_presets_on_arbitrary_text(encodings, hf_presets, text):
    for name, (_, hf) in hf_presets.items():
        assert hf.encode(text).ids == encodings[name][0].encode(text, allowed_special="all")


def test_hf_json_written_by_tokenizers_with_a_split_loads(small_corpus, tmp_path, web_sample):
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import Regex, pre_tokenizers

    ours = Tokenizer(*train_bpe(small_corpus, 600, [EOT], pattern=CUSTOM), [EOT], CUSTOM)
    ours.save_hf_json(tmp_path / "ours.json")
    hf = tokenizers.Tokenizer.from_file(str(tmp_path / "ours.json"))
    text = web_sample[:100_000]
    assert hf.encode(text).ids == ours.encode(text, allowed_special="all")
    # The same pipeline built with tokenizers' own API and saved by it.
    hf.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(CUSTOM), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    hf.save(str(tmp_path / "custom.json"))
    back = Tokenizer.from_hf_json(tmp_path / "custom.json")
    assert back == ours and back.pattern == CUSTOM
    # A Split that drops its matches, or a ByteLevel that splits again, is not read.
    doc = json.loads((tmp_path / "custom.json").read_text(encoding="utf-8"))
    doc["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Removed"
    (tmp_path / "removed.json").write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ValueError, match="pre_tokenizer"):
        Tokenizer.from_hf_json(tmp_path / "removed.json")
    doc["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Isolated"
    doc["pre_tokenizer"]["pretokenizers"][1]["use_regex"] = True
    (tmp_path / "twice.json").write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ValueError, match="pre_tokenizer"):
        Tokenizer.from_hf_json(tmp_path / "twice.json")
