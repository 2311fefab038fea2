"""Gradient accumulation: k micro-batches of B make the same update as one batch of k x B."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bpelm.training.config import ConfigError, ModelConfig, TrainConfig  # noqa: E402
from bpelm.training.data import get_batch  # noqa: E402
from bpelm.training.loop import Trainer  # noqa: E402


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("accum") / "train.npy"
    np.save(path, np.random.default_rng(0).integers(0, 64, size=4000).astype(np.uint16))
    return path


def trainer(tmp: Path, tokens: Path, batch: int, accum: int) -> Trainer:
    model = ModelConfig(
        vocab_size=64, context_length=16, d_model=32, num_layers=1, num_heads=2, d_ff=64
    )
    cfg = TrainConfig(
        train_data=str(tokens),
        batch_size=batch,
        grad_accum_steps=accum,
        max_steps=10,
        warmup_steps=0,
        device="cpu",
        compile=False,
        dtype="float32",
    )
    return Trainer(model, cfg, tmp, log=lambda _: None)


def test_micro_batches_draw_the_big_batch() -> None:
    # What makes the comparison below exact: k draws of B starts are one draw of k x B.
    data = np.arange(1000)
    big = get_batch(data, 8, 4, "cpu", rng=np.random.default_rng(3))[0]
    rng = np.random.default_rng(3)
    small = torch.cat([get_batch(data, 2, 4, "cpu", rng=rng)[0] for _ in range(4)])
    assert torch.equal(big, small)


def test_four_micro_batches_equal_one_big_batch(tmp_path: Path, tokens: Path) -> None:
    big = trainer(tmp_path / "big", tokens, batch=8, accum=1)
    acc = trainer(tmp_path / "acc", tokens, batch=2, accum=4)
    assert acc.tokens_per_step == big.tokens_per_step == 8 * 16
    for a, b in zip(big.model.parameters(), acc.model.parameters()):
        assert torch.equal(a, b)  # same seed, same start
    # The gradients themselves: equal to float tolerance (summation order differs).
    loss_big, loss_acc = big._forward_backward(), acc._forward_backward()
    assert loss_acc.item() == pytest.approx(loss_big.item(), rel=1e-6)
    for a, b in zip(big.model.parameters(), acc.model.parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-5, atol=1e-7)
    big.optimizer.zero_grad()
    acc.optimizer.zero_grad()
    # Whole steps: AdamW divides by sqrt(v), which turns the last bits of a near-zero gradient
    # into up to lr; two steps at lr 1e-2 agree to well under that.
    for _ in range(2):
        big.step(1e-2)
        acc.step(1e-2)
    assert acc.pending[-1][1].item() == pytest.approx(big.pending[-1][1].item(), rel=1e-5)
    for a, b in zip(big.model.parameters(), acc.model.parameters()):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)


def test_bad_accumulation_is_refused(tmp_path: Path, tokens: Path) -> None:
    with pytest.raises(ConfigError, match="grad_accum_steps"):
        trainer(tmp_path / "bad", tokens, batch=2, accum=0)
