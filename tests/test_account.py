"""`bpelm account`: the formulas against the issue's known answers and against real models."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

from bpelm.cli import main  # noqa: E402
from bpelm.experiments.accounting import (  # noqa: E402
    PRESETS,
    AccountingOptions,
    account,
    formula_by_measured_component,
    measure,
    parse_bytes,
)
from bpelm.nn import ModelConfig, TransformerLM  # noqa: E402


def preset(name: str, **changes) -> ModelConfig:
    return ModelConfig(**{**PRESETS[name], **changes})


def flops(acc, name: str) -> float:
    return next(c.forward_flops for c in acc.components if c.name.startswith(name))


def test_gpt2_xl_known_answers() -> None:
    acc = account(preset("gpt2-xl"))
    assert acc.params == 2_127_057_600
    assert acc.forward_flops == pytest.approx(4.513e12, rel=1e-3)
    assert flops(acc, "Q/K/V") == pytest.approx(7.550e11, rel=1e-3)
    assert flops(acc, "attention scores") == pytest.approx(1.611e11, rel=1e-3)
    assert flops(acc, "attention-weighted") == pytest.approx(1.611e11, rel=1e-3)
    assert flops(acc, "output projection") == pytest.approx(2.517e11, rel=1e-3)
    ffn = next(c for c in acc.components if c.name.startswith("FFN"))
    assert ffn.forward_flops == pytest.approx(3.020e12, rel=1e-3)
    assert round(100 * acc.share(ffn), 1) == 66.9
    assert flops(acc, "LM head") == pytest.approx(1.647e11, rel=1e-3)
    assert account(preset("gpt2-xl"), 16_384).forward_flops == pytest.approx(1.495e14, rel=1e-3)


@pytest.mark.parametrize(
    "name, expected",
    [("gpt2-small", 3.496e11), ("gpt2-medium", 1.033e12), ("gpt2-large", 2.258e12)],
)
def test_gpt2_sizes_forward_flops(name: str, expected: float) -> None:
    assert account(preset(name)).forward_flops == pytest.approx(expected, rel=1e-3)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"tie_embeddings": True},
        {"ffn": "silu", "d_ff": 128},
        {"norm": "none"},
        {"position": "nope", "norm_position": "post"},
    ],
)
def test_params_match_a_real_model(changes: dict) -> None:
    shape = dict(vocab_size=97, context_length=16, d_model=32, num_layers=2, num_heads=4, d_ff=80)
    cfg = ModelConfig(**{**shape, **changes})
    model = TransformerLM(cfg)
    assert account(cfg).params == sum(p.numel() for p in model.parameters())


def test_measure_agrees_with_formula_per_component() -> None:
    cfg = preset("tinystories-17m")
    acc, m = account(cfg), measure(cfg)
    assert m.params == acc.params
    assert m.forward_flops == acc.forward_flops
    formula = formula_by_measured_component(acc)
    assert formula.keys() == m.by_component.keys()
    for key, value in formula.items():
        assert m.by_component[key] == pytest.approx(value), key


def test_memory_formula_and_max_batch() -> None:
    acc = account(preset("gpt2-small"))
    a, b = acc.activation_bytes_per_sequence, acc.fixed_bytes
    assert b == 16 * acc.params  # float32 parameters, gradients, two AdamW moments
    assert acc.memory_bytes(3) == 3 * a + b
    limit = parse_bytes("80GiB")
    n = acc.max_batch(limit)
    assert acc.memory_bytes(n) <= limit < acc.memory_bytes(n + 1)
    assert account(preset("gpt2-xl")).max_batch(parse_bytes("10GiB")) == 0
    fewer = account(preset("gpt2-small"), options=AccountingOptions(ffn_intermediate=False))
    assert fewer.activation_bytes_per_sequence < a
    assert acc.adamw_flops == 13 * acc.params
    assert acc.step_flops(2) == 2 * 3 * acc.forward_flops + acc.adamw_flops
    assert acc.days(1, 1, acc.step_flops(1), 1.0) == pytest.approx(1 / 86_400)


def test_parse_bytes_units() -> None:
    assert parse_bytes("80GiB") == 80 * 2**30
    assert parse_bytes("80GB") == 80e9
    assert parse_bytes("1.5e9") == 1.5e9
    with pytest.raises(ValueError, match="memory"):
        parse_bytes("80 furlongs")


def test_cli_text_json_and_measure(capsys) -> None:
    assert main(["account", "--preset", "gpt2-xl"]) == 0
    text = capsys.readouterr().out
    assert "2,127,057,600" in text and "66.9%" in text and "largest batch" in text
    assert main(["account", "--preset", "tinystories-17m", "--measure", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["measured"]["params"] == data["params"]
    assert data["measured"]["forward_flops"] == data["forward_flops"]
    assert main(["account", "--preset", "gpt2-small", "--measure", "--context", "64"]) == 0
    assert "formula and model agree" in capsys.readouterr().out


def test_cli_config_file(tmp_path, capsys) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        "[model]\nvocab_size = 100\ncontext_length = 8\nd_model = 16\nnum_layers = 1\n"
        "num_heads = 2\nd_ff = 32\n[train]\nbatch_size = 3\nmax_steps = 5\n"
    )
    assert main(["account", "--config", str(cfg), "--json", "--set", "tie_embeddings=true"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["batch"] == 3 and data["steps"] == 5
    assert data["params"] == sum(
        p.numel()
        for p in TransformerLM(
            ModelConfig(
                vocab_size=100,
                context_length=8,
                d_model=16,
                num_layers=1,
                num_heads=2,
                d_ff=32,
                tie_embeddings=True,
            )
        ).parameters()
    )
