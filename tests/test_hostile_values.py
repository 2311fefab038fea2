"""Values and files that cannot be right are refused early, naming what is wrong (issue #11:
items 6, 12-15): config values, sampling settings, token arrays, checkpoints."""

from __future__ import annotations

import dataclasses
import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

import torch  # noqa: E402
from bpelm import Tokenizer, encode_file  # noqa: E402
from bpelm.cli import main  # noqa: E402
from bpelm.generate import generate, sample_text  # noqa: E402
from bpelm.nn import ModelConfig, TransformerLM  # noqa: E402
from bpelm.training import train  # noqa: E402
from bpelm.training.checkpoint import CheckpointError, read_checkpoint  # noqa: E402
from bpelm.training.config import ConfigError, TrainConfig, build_config  # noqa: E402
from bpelm.training.data import load_tokens  # noqa: E402
from bpelm.training.loop import Trainer  # noqa: E402

VOCAB = 48
CTX = 8


def quiet(_: str) -> None:
    pass


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("hostile")
    path = d / "train.npy"
    np.save(path, np.random.default_rng(0).integers(0, VOCAB, 2000).astype(np.uint16))
    return path


def configs(tokens: Path, **train_overrides) -> tuple[ModelConfig, TrainConfig]:
    model = ModelConfig(
        vocab_size=VOCAB, context_length=CTX, d_model=16, num_layers=1, num_heads=2, d_ff=32
    )
    cfg = TrainConfig(
        train_data=str(tokens),
        batch_size=2,
        max_steps=2,
        warmup_steps=0,
        eval_every=2,
        eval_batches=1,
        checkpoint_every=1,
        device="cpu",
        compile=False,
    )
    return model, dataclasses.replace(cfg, **train_overrides)


# --- 12. config values --------------------------------------------------------------------


@pytest.mark.parametrize(
    "override, key",
    [
        ("train.max_lr=nan", "train.max_lr"),
        ("train.max_lr=inf", "train.max_lr"),
        ("train.max_lr=0", "train.max_lr"),
        ("train.min_lr=-1e-4", "train.min_lr"),
        ("train.grad_clip=-1", "train.grad_clip"),
        ("model.rope_theta=0", "model.rope_theta"),
        ("train.beta2=1.5", "train.beta2"),
        ("train.eps=0", "train.eps"),
        ("train.weight_decay=-0.1", "train.weight_decay"),
    ],
)
def test_impossible_config_values_name_their_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        build_config({}, [override])


def test_sane_config_still_passes() -> None:
    build_config({}, ["train.grad_clip=0", "train.min_lr=0", "train.weight_decay=0"])


# --- 12. sampling settings ----------------------------------------------------------------


def tiny_model(vocab: int = VOCAB) -> TransformerLM:
    torch.manual_seed(0)
    cfg = ModelConfig(
        vocab_size=vocab, context_length=CTX, d_model=16, num_layers=1, num_heads=2, d_ff=32
    )
    return TransformerLM(cfg).eval()


@pytest.mark.parametrize(
    "setting, message",
    [
        ({"temperature": -0.5}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_k": -1}, "top_k"),
        ({"num_samples": 0}, "num_samples"),
        ({"max_new_tokens": -3}, "max_new_tokens"),
    ],
)
def test_impossible_sampling_settings_are_refused_at_the_call(setting, message) -> None:
    # Refused when generate() is called, not when its first token is asked for.
    with pytest.raises(ValueError, match=message):
        generate(tiny_model(), [1, 2], **setting)


def byte_tokenizer() -> Tokenizer:
    return Tokenizer({i: bytes([i]) for i in range(256)}, [])


def test_sample_text_refuses_before_printing_anything() -> None:
    out = io.StringIO()
    with pytest.raises(ValueError, match="top_p"):
        sample_text(tiny_model(300), byte_tokenizer(), "hi", top_p=0.0, out=out)
    assert out.getvalue() == ""


@pytest.mark.parametrize("command", [["--top-p", "0"], ["--temperature", "-1"]])
def test_generate_command_refuses_bad_settings(tmp_path: Path, tokens: Path, capsys, command):
    run = tmp_path / "run"
    model_cfg, cfg = configs(tokens)
    model_cfg = dataclasses.replace(model_cfg, vocab_size=300)
    train(model_cfg, cfg, run, progress=False, log=quiet)
    byte_tokenizer().save(tmp_path / "vocab.json", tmp_path / "merges.txt")
    argv = ["generate", "--checkpoint", str(run), "--tokenizer", str(tmp_path), *command]
    assert main(argv) == 1
    assert "must be" in capsys.readouterr().err


# --- 13. a model and a tokenizer or data that do not belong together -----------------------


def test_a_tokenizer_larger_than_the_model_is_refused() -> None:
    with pytest.raises(ValueError, match="do not belong together"):
        sample_text(tiny_model(100), byte_tokenizer(), "hi", out=io.StringIO())


def test_padding_ids_past_the_tokenizer_are_never_drawn() -> None:
    model = tiny_model(300)
    with torch.no_grad():
        # Make the padding ids (256..299) by far the likeliest: they must still not be drawn.
        model.lm_head.weight[256:] = 0.0
        model.lm_head.bias = None
        steps = generate(model, [65], max_new_tokens=20, temperature=5.0, top_p=1.0, seed=0)
        unmasked = torch.cat(list(steps)).tolist()
        steps = generate(
            model, [65], max_new_tokens=20, temperature=5.0, top_p=1.0, seed=0, vocab_limit=256
        )
        masked = torch.cat(list(steps)).tolist()
    assert max(masked) < 256
    assert unmasked != masked  # the limit did change what was drawn


def test_eval_refuses_ids_past_the_model_vocabulary(tmp_path: Path, tokens: Path, capsys):
    run = tmp_path / "run"
    train(*configs(tokens), run, progress=False, log=quiet)
    big = tmp_path / "big.npy"
    np.save(big, np.full(100, VOCAB + 5, dtype=np.uint16))
    assert main(["eval", "--checkpoint", str(run), "--data", str(big), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "--data" in err and f"token id {VOCAB + 5}" in err


@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_float_or_signed_arrays_are_not_token_arrays(tmp_path: Path, dtype) -> None:
    path = tmp_path / "t.npy"
    np.save(path, np.arange(100).astype(dtype))
    with pytest.raises(ValueError, match="unsigned integers"):
        load_tokens(path)


# --- 14. late failures move to the start ---------------------------------------------------


def test_short_validation_data_fails_before_training(tmp_path: Path, tokens: Path) -> None:
    short = tmp_path / "val.npy"
    np.save(short, np.arange(CTX - 2, dtype=np.uint16))
    with pytest.raises(ValueError, match=r"train\.val_data"):
        Trainer(*configs(tokens, val_data=str(short)), tmp_path / "run", log=quiet)
    assert not list((tmp_path / "run").glob("ckpt_*"))


# --- 6. raw token files carry their width ---------------------------------------------------


def test_bin_files_record_their_dtype(tmp_path: Path) -> None:
    text = tmp_path / "t.txt"
    text.write_text("hello world " * 50)
    tok = byte_tokenizer()
    n = encode_file(tok, text, tmp_path / "t.bin", dtype="uint32")
    meta = json.loads((tmp_path / "t.bin.json").read_text())
    assert meta == {"dtype": "uint32", "tokens": n}
    data = load_tokens(tmp_path / "t.bin")
    assert data.dtype == np.uint32 and len(data) == n  # read as uint16 it would be 2n long
    assert bytes(data.astype(np.uint8)) == text.read_bytes()
    with pytest.raises(ValueError, match="records uint32"):
        load_tokens(tmp_path / "t.bin", dtype=np.uint16)


def test_a_bin_without_a_record_is_read_as_uint16_with_a_warning(tmp_path: Path) -> None:
    np.arange(10, dtype=np.uint16).tofile(tmp_path / "old.bin")
    with pytest.warns(UserWarning, match="old.bin.json"):
        data = load_tokens(tmp_path / "old.bin")
    assert data.dtype == np.uint16 and len(data) == 10
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_tokens(tmp_path / "old.bin", dtype=np.uint16).shape == (10,)


# --- 15. checkpoints ----------------------------------------------------------------------


def test_a_file_that_is_not_a_checkpoint_says_so(tmp_path: Path, capsys) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a bpelm checkpoint"):
        read_checkpoint(junk)
    assert main(["generate", "--checkpoint", str(junk), "--tokenizer", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "not a bpelm checkpoint" in err and "weights_only" not in err


def test_a_tensor_file_is_not_a_checkpoint(tmp_path: Path) -> None:
    torch.save({"weights": torch.zeros(2)}, tmp_path / "w.pt")
    with pytest.raises(CheckpointError, match="expected the keys"):
        read_checkpoint(tmp_path / "w.pt")


def test_resume_falls_back_past_a_truncated_newest_checkpoint(tmp_path: Path, tokens: Path):
    run = tmp_path / "run"
    model_cfg, cfg = configs(tokens, max_steps=2)
    train(model_cfg, cfg, run, progress=False, log=quiet)
    newest = run / "ckpt_0000002.pt"
    newest.write_bytes(newest.read_bytes()[:1000])  # killed mid-copy
    said: list[str] = []
    result = train(
        model_cfg, dataclasses.replace(cfg, max_steps=3), run, resume=run, progress=False,
        log=said.append,
    )  # fmt: skip
    assert any("ckpt_0000002.pt" in s and "previous checkpoint" in s for s in said)
    assert any("resumed from" in s and "ckpt_0000001.pt" in s for s in said)
    assert result.steps == 3
