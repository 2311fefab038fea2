"""Special tokens as tiktoken treats them: refused by default, `allowed_special` opts in,
`disallowed_special=()` makes them ordinary text; the same ids as tiktoken for the same
arguments, on every encode path."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
from bpelm import Tokenizer, encode_file
from bpelm.cli import main
from bpelm.tokenizer import tokenizer as tokenizer_module
from bpelm.tokenizer.gpt2 import GPT2_PATTERN, tiktoken_encoding
from hypothesis import given, settings
from hypothesis import strategies as st

tiktoken = pytest.importorskip("tiktoken")

EOT = "<|endoftext|>"
PAD = "<|pad|>"
POLICIES = [
    {},
    {"allowed_special": "all"},
    {"allowed_special": {EOT}},
    {"allowed_special": {PAD}},
    {"disallowed_special": ()},
    {"allowed_special": {PAD}, "disallowed_special": ()},
    {"disallowed_special": {EOT}},
]


@pytest.fixture(scope="module")
def ours(gpt2_files) -> Tokenizer:
    return Tokenizer.from_files(*gpt2_files, special_tokens=[EOT, PAD])


@pytest.fixture(scope="module")
def reference(gpt2_files):
    base = tiktoken_encoding(gpt2_files[0])
    return tiktoken.Encoding(
        "gpt2-pad",
        pat_str=GPT2_PATTERN,
        mergeable_ranks=base._mergeable_ranks,
        special_tokens={EOT: 50256, PAD: 50257},
    )


def outcome(fn, *args, **kwargs):
    """The result, or the exception type (tiktoken's messages differ in the offset only)."""
    try:
        return fn(*args, **kwargs)
    except ValueError:
        return ValueError


pieces = st.lists(st.sampled_from(["a", " b", EOT, PAD, "<|", "|>", "pad", "\n", "é"]))


@settings(max_examples=150, deadline=None)
@given(parts=pieces, policy=st.sampled_from(POLICIES))
def test_encode_matches_tiktoken_for_every_policy(ours, reference, parts, policy):
    text = "".join(parts)
    want = outcome(reference.encode, text, **policy)
    assert outcome(ours.encode, text, **policy) == want
    got_array = outcome(ours.encode_to_array, text, **policy)
    assert (got_array if got_array is ValueError else got_array.tolist()) == want
    assert outcome(lambda: list(ours.encode_iterable(parts, **policy))) == want
    assert outcome(ours.encode_batch, [text, "x"], **policy) == outcome(
        reference.encode_batch, [text, "x"], **policy
    )
    assert ours.encode_ordinary(text) == reference.encode_ordinary(text)


def test_default_refuses_and_names_the_token_and_offset(ours):
    with pytest.raises(ValueError, match=r"'<\|endoftext\|>' \(at character 10\)"):
        ours.encode("user text <|endoftext|>")
    with pytest.raises(ValueError, match=r"texts\[1\].*'<\|pad\|>'"):
        ours.encode_batch(["fine", "a <|pad|>"])
    with pytest.raises(ValueError, match=r"texts\[0\]"):
        ours.encode_batch_flat(["<|pad|>"])
    # The first text that spells any disallowed token, whichever token is searched first.
    with pytest.raises(ValueError, match=r"texts\[1\].*'<\|pad\|>'"):
        ours.encode_batch_flat(["x", "<|pad|>", "<|endoftext|>", "<|pad|>"])
    # The first occurrence is named, whichever token it is.
    with pytest.raises(ValueError, match=r"'<\|pad\|>' \(at character 1\)"):
        ours.encode("x<|pad|><|endoftext|>")
    assert ours.encode("no specials here") == ours.encode_ordinary("no specials here")


def test_bad_policy_arguments(ours):
    with pytest.raises(TypeError):
        ours.encode("x", allowed_special=EOT)  # a str, not a set of them
    with pytest.raises(TypeError):
        ours.encode("x", disallowed_special=EOT)
    for method in (ours.encode, ours.encode_to_array, ours.encode_ordinary):
        with pytest.raises(TypeError, match=f"^{method.__name__} takes a str, not bytes$"):
            method(b"x")


def test_a_policy_follows_arguments_that_change_between_calls(ours):
    """Policies are kept by the arguments' identity only for immutable ones: a list
    changed between two calls is read again."""
    allowed = [EOT]
    text = f"a{EOT}b"
    assert ours.encode(text, allowed_special=allowed) == ours.encode(text, allowed_special="all")
    allowed.clear()
    with pytest.raises(ValueError, match="disallowed special token"):
        ours.encode(text, allowed_special=allowed)
    disallowed = [EOT]
    with pytest.raises(ValueError, match="disallowed special token"):
        ours.encode_to_array(text, disallowed_special=disallowed)
    disallowed.clear()
    assert ours.encode_to_array(text, disallowed_special=disallowed).tolist() == (
        ours.encode_ordinary(text)
    )


def test_equal_arguments_made_anew_each_call_give_one_policy(ours):
    """Many distinct but equal argument objects (more than the front keeps by identity),
    and ones equal to those it keeps: the same ids each time."""
    text = f"x{EOT}y{PAD}"
    want = ours.encode(text, allowed_special="all")
    for i in range(12):
        every = "".join(["a", "ll"])  # equal to "all", not the same object
        assert ours.encode(text, allowed_special=every) == want
        assert ours.encode(text, allowed_special=(EOT, PAD)[: 2 + i % 1]) == want
        assert ours.encode(text, allowed_special=frozenset([EOT, PAD, f"<|{i}|>"])) == want
        ordinary = ours.encode(text, disallowed_special=tuple(str(j) for j in range(i)))
        assert ordinary == ours.encode_ordinary(text)


def test_encode_iterable_finds_a_token_cut_across_a_flush(ours, monkeypatch):
    monkeypatch.setattr(tokenizer_module, "_FLUSH_CHARS", 8)
    parts = ["hello there ", "and <|endo", "ftext|> more"]
    with pytest.raises(ValueError, match=r"at character 16"):
        list(ours.encode_iterable(parts))
    text = "".join(parts)
    assert list(ours.encode_iterable(parts, allowed_special="all")) == ours.encode(
        text, allowed_special="all"
    )
    many = ["word "] * 40 + ["<|endoftext|>"] + ["word "] * 40
    got = list(ours.encode_iterable(many, disallowed_special=()))
    assert got == ours.encode_ordinary("".join(many))


def test_encode_file_allows_the_specials_of_a_corpus(ours, tmp_path):
    src = tmp_path / "corpus.txt"
    text = "one document<|endoftext|>another<|pad|>"
    src.write_text(text, encoding="utf-8")
    encode_file(ours, src, tmp_path / "all.npy")
    assert np.load(tmp_path / "all.npy").tolist() == ours.encode(text, allowed_special="all")
    encode_file(ours, src, tmp_path / "plain.npy", allowed_special=())
    assert np.load(tmp_path / "plain.npy").tolist() == ours.encode_ordinary(text)


def test_gpt2_files_without_specials_make_endoftext_special(gpt2_files, tmp_path):
    # One rule: a multi-byte token no merge makes is a special token, so token_to_id and
    # encode agree (before, token_to_id said 50256 while encode gave seven tokens).
    for path in gpt2_files:
        shutil.copy(path, tmp_path / path.name)
    tok = Tokenizer.load(tmp_path)
    assert tok.special_tokens == [EOT]
    assert tok.token_to_id(EOT) == 50256 == tok.eot_id
    assert tok.encode(EOT, allowed_special="all") == [50256]
    with pytest.raises(ValueError):
        tok.encode(EOT)
    reference = tiktoken_encoding(gpt2_files[0])
    assert tok.encode_ordinary(EOT) == reference.encode_ordinary(EOT)
    assert tok == Tokenizer.gpt2()


def test_explicit_specials_are_kept_as_given(gpt2_files):
    assert Tokenizer.from_files(*gpt2_files, special_tokens=[]).special_tokens == []


def test_train_special_keeps_endoftext(tmp_path, capsys):
    text = tmp_path / "t.txt"
    text.write_text("hello world <|pad|> hello<|endoftext|>" * 50, encoding="utf-8")
    out = tmp_path / "tok"
    argv = ["tokenizer", "train", "--input", str(text), "--vocab-size", "270"]
    assert main([*argv, "--special", PAD, "--out", str(out), "--no-progress"]) == 0
    tok = Tokenizer.load(out)
    assert tok.special_tokens == [EOT, PAD]
    assert tok.eot_id is not None


def test_a_special_that_is_one_pretoken_is_plain_text_when_not_allowed(gpt2_files):
    # "Xyzzyqx" is a whole GPT-2 pretoken: ordinary text spelling it must get BPE tokens,
    # not the special's id from the word cache (or the whole-word lookup of long words).
    specials = {EOT: 50256, "Xyzzyqx": 50257, "Abcdefghijklmnopqrstuvwxyz": 50258}
    ours = Tokenizer.from_files(*gpt2_files, special_tokens=list(specials))
    reference = tiktoken.Encoding(
        "gpt2-words",
        pat_str=GPT2_PATTERN,
        mergeable_ranks=tiktoken_encoding(gpt2_files[0])._mergeable_ranks,
        special_tokens=specials,
    )
    text = "Xyzzyqx said Xyzzyqx.\nAbcdefghijklmnopqrstuvwxyz"
    assert ours.encode_ordinary(text) == reference.encode_ordinary(text)
    for policy in POLICIES[1:]:
        assert outcome(ours.encode, text, **policy) == outcome(reference.encode, text, **policy)


def test_encode_help_says_corpus_specials_are_ids(capsys):
    with pytest.raises(SystemExit):
        main(["tokenizer", "encode", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "training corpus" in text and "differs on purpose" in text
    assert "--ordinary-specials" in text


def test_encode_command_ordinary_specials(ours, tmp_path, capsys):
    ours.save(tmp_path / "tok")
    src = tmp_path / "c.txt"
    src.write_text("a<|endoftext|>b", encoding="utf-8")
    base = ["tokenizer", "encode", "--tokenizer", str(tmp_path / "tok"), "--input", str(src)]
    assert main([*base, "--out", str(tmp_path / "ids.npy")]) == 0
    assert main([*base, "--out", str(tmp_path / "plain.npy"), "--ordinary-specials"]) == 0
    assert np.load(tmp_path / "ids.npy").tolist() == ours.encode(
        "a<|endoftext|>b", allowed_special="all"
    )
    assert np.load(tmp_path / "plain.npy").tolist() == ours.encode_ordinary("a<|endoftext|>b")


@pytest.mark.parametrize("where", [0, 700, 2999])
def test_long_texts_are_screened_for_every_disallowed_token(where):
    """Long texts are cleared with one scan for the tokens' shared first characters
    (`specials.screen`); a token anywhere in one, whatever its first characters, is found."""
    vocab = {i: bytes([i]) for i in range(256)}
    # Five tokens (the screen is used from four on), one not starting like the others.
    specials = ["<|endoftext|>", "<|pad|>", "<|fim|>", "<|sep|>", "[EOS]"]
    tok = Tokenizer(vocab, [], special_tokens=specials)
    filler = "plain words and <| brackets |> " * 100  # over the screening threshold
    for token in tok.special_tokens:
        text = filler[:where] + token + filler[where:]
        for encode in (tok.encode, tok.encode_to_array, lambda t: tok.encode_batch([t])):
            with pytest.raises(ValueError, match=rf"'{re.escape(token)}' \(at character {where}\)"):
                encode(text)
        assert tok.decode(tok.encode(text, allowed_special="all")) == text
    assert tok.decode(tok.encode(filler)) == filler
