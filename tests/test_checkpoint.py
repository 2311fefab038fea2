"""save_checkpoint / load_checkpoint round trips."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from bpelm.nn import ModelConfig, TransformerLM, cross_entropy
from bpelm.training.checkpoint import load_checkpoint, read_checkpoint_extra, save_checkpoint
from bpelm.training.data import get_batch
from bpelm.training.optim import AdamW

CFG = {
    "vocab_size": 50,
    "context_length": 16,
    "d_model": 16,
    "num_layers": 2,
    "num_heads": 2,
    "d_ff": 32,
    "rope_theta": 10000.0,
}
DATA = np.random.default_rng(0).integers(0, 50, size=2000)


def fresh(seed: int = 0, foreach: bool = False) -> tuple[TransformerLM, AdamW]:
    torch.manual_seed(seed)
    model = TransformerLM(ModelConfig(**CFG))  # type: ignore[arg-type]
    return model, AdamW(model.parameters(), lr=3e-3, weight_decay=0.1, foreach=foreach)


def train(model: TransformerLM, opt: AdamW, steps: range) -> None:
    for it in steps:
        x, y = get_batch(DATA, 4, 16, "cpu", rng=np.random.default_rng(it))
        opt.zero_grad()
        cross_entropy(model(x), y).backward()
        opt.step()


@pytest.mark.parametrize("foreach", [False, True])
def test_resume_equals_uninterrupted(tmp_path: Path, foreach: bool) -> None:
    model, opt = fresh(foreach=foreach)
    train(model, opt, range(0, 5))
    path = tmp_path / "ckpt" / "step5.pt"
    save_checkpoint(model, opt, 5, path, extra={"config": dict(CFG), "note": "x"})
    train(model, opt, range(5, 10))

    resumed, resumed_opt = fresh(seed=123, foreach=foreach)
    assert load_checkpoint(path, resumed, resumed_opt) == 5
    train(resumed, resumed_opt, range(5, 10))
    for (name, a), b in zip(model.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert read_checkpoint_extra(path) == {"config": CFG, "note": "x"}
    assert [p.name for p in path.parent.iterdir()] == ["step5.pt"]  # no temp file left


def test_file_object_and_model_only(tmp_path: Path) -> None:
    model, opt = fresh()
    train(model, opt, range(3))
    buf = io.BytesIO()
    save_checkpoint(model, opt, 3, buf)
    buf.seek(0)
    other, _ = fresh(seed=9)
    assert load_checkpoint(buf, other) == 3
    for a, b in zip(model.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)
    buf.seek(0)
    assert read_checkpoint_extra(buf) == {}
    # A model-only checkpoint cannot restore an optimizer.
    save_checkpoint(model, None, 3, tmp_path / "m.pt")
    with pytest.raises(ValueError, match="optimizer"):
        load_checkpoint(tmp_path / "m.pt", other, AdamW(other.parameters()))


def test_loads_with_weights_only(tmp_path: Path) -> None:
    model, opt = fresh()
    train(model, opt, range(2))
    extra = {"rng": torch.get_rng_state(), "np": np.random.default_rng(0).bit_generator.state}
    save_checkpoint(model, opt, 2, tmp_path / "c.pt", extra=extra)
    obj = torch.load(tmp_path / "c.pt", weights_only=True)
    assert set(obj) == {"model", "optimizer", "iteration", "extra"}
    assert torch.equal(read_checkpoint_extra(tmp_path / "c.pt")["rng"], extra["rng"])


def test_atomic_write_leaves_old_file_on_error(tmp_path: Path) -> None:
    model, opt = fresh()
    path = tmp_path / "c.pt"
    save_checkpoint(model, opt, 1, path)
    before = path.read_bytes()

    class Unpicklable:
        def __reduce__(self) -> tuple[object, ...]:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        save_checkpoint(model, opt, 2, path, extra={"bad": Unpicklable()})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]
    with pytest.raises(RuntimeError):
        save_checkpoint(model, opt, 2, tmp_path / "new.pt", extra={"bad": Unpicklable()})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]


class Wrapped(torch.nn.Module):
    """Stands in for torch.compile's OptimizedModule: the real module under `_orig_mod`."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self._orig_mod = inner


def test_compiled_wrapper_is_unwrapped(tmp_path: Path) -> None:
    model, opt = fresh()
    save_checkpoint(Wrapped(model), opt, 5, tmp_path / "c.pt")
    obj = torch.load(tmp_path / "c.pt", weights_only=True)
    assert "token_embeddings.weight" in obj["model"]
    other, _ = fresh(seed=4)
    wrapped = Wrapped(other)
    assert load_checkpoint(tmp_path / "c.pt", wrapped) == 5
    assert torch.equal(other.lm_head.weight, model.lm_head.weight)
