"""`bpelm experiment sgd-toy` and `match-ffn`: the learning-rate toy and FFN width matching."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from bpelm.cli import main  # noqa: E402
from bpelm.experiments.accounting import PRESETS, account  # noqa: E402
from bpelm.experiments.toys import (  # noqa: E402
    DecayingSGD,
    diverges,
    match_silu_to_swiglu,
    sgd_toy,
)
from bpelm.training.config import ModelConfig  # noqa: E402


def test_sgd_toy_third_rate_diverges() -> None:
    results = sgd_toy([1e1, 1e2, 1e3], steps=10)
    assert [diverges(results[lr]) for lr in (1e1, 1e2, 1e3)] == [False, False, True]
    assert results[1e1][0] == results[1e3][0]  # every rate starts from the same W
    assert results[1e3][-1] > 1e10 * results[1e3][0]


def test_decaying_sgd_step_size() -> None:
    w = torch.nn.Parameter(torch.tensor([1.0]))
    opt = DecayingSGD([w], lr=0.5)
    for t in range(3):
        opt.zero_grad()
        w.sum().backward()  # gradient 1
        before = w.item()
        opt.step()
        assert w.item() == pytest.approx(before - 0.5 / math.sqrt(t + 1))


def test_cli_sgd_toy_prints_table(capsys) -> None:
    assert main(["experiment", "sgd-toy"]) == 0
    out = capsys.readouterr().out
    assert "lr=1000" in out and out.strip().splitlines()[-1].split()[-1] == "diverges"
    assert len(out.strip().splitlines()) == 12  # header, 10 steps, verdicts


@pytest.mark.parametrize("name", ["tinystories-17m", "gpt2-small"])
def test_match_ffn_within_one_percent(name: str) -> None:
    m = match_silu_to_swiglu(ModelConfig(**PRESETS[name]))
    assert m.silu.ffn == "silu" and m.silu.d_ff % 64 == 0
    assert m.relative_difference <= 0.01
    assert m.silu_params == account(m.silu).params


def test_cli_match_ffn(tmp_path, capsys) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        "[model]\nvocab_size = 1000\ncontext_length = 64\nd_model = 128\nnum_layers = 2\n"
        "num_heads = 4\nd_ff = 344\n"
    )
    assert main(["experiment", "match-ffn", "--config", str(cfg), "--multiple", "8"]) == 0
    assert "--set ffn=silu --set d_ff=" in capsys.readouterr().out
