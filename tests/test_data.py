"""get_batch and load_tokens."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from bpelm.training.data import get_batch, load_tokens


def test_batch_shapes_dtype_and_shift() -> None:
    data = np.arange(1000, dtype=np.uint16)
    x, y = get_batch(data, 16, 32, "cpu", rng=np.random.default_rng(0))
    assert x.shape == y.shape == (16, 32)
    assert x.dtype == y.dtype == torch.int64
    assert torch.equal(x + 1, y)
    assert torch.equal(x[:, 1:], y[:, :-1])
    # Each row is a contiguous window of the data.
    assert torch.equal(x[:, 1:] - x[:, :-1], torch.ones(16, 31, dtype=torch.int64))


def test_every_valid_start_is_hit_and_no_other() -> None:
    n, t = 40, 8
    data = np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(1)
    starts = set()
    for _ in range(200):
        x, y = get_batch(data, 8, t, "cpu", rng=rng)
        starts.update(x[:, 0].tolist())
        assert int(y.max()) <= n - 1
    assert starts == set(range(n - t))  # 0 .. n - t - 1 inclusive


def test_starts_are_roughly_uniform() -> None:
    data = np.arange(20, dtype=np.int64)
    x, _ = get_batch(data, 20000, 10, "cpu", rng=np.random.default_rng(2))
    counts = np.bincount(x[:, 0].numpy(), minlength=10)
    assert counts.shape == (10,)
    assert counts.min() > 1700 and counts.max() < 2300  # expected 2000 each


def test_seeded_rng_is_reproducible() -> None:
    data = np.arange(500, dtype=np.uint16)
    a = get_batch(data, 4, 16, "cpu", rng=np.random.default_rng(7))
    b = get_batch(data, 4, 16, "cpu", rng=np.random.default_rng(7))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_memmap_bin_and_npy(tmp_path: Path) -> None:
    tokens = (np.arange(5000) % 65000).astype(np.uint16)
    tokens.tofile(tmp_path / "t.bin")
    np.save(tmp_path / "t.npy", tokens.astype(np.uint32))
    with pytest.warns(UserWarning, match="t.bin.json"):  # no record of its width: uint16
        mm = load_tokens(tmp_path / "t.bin")
    assert isinstance(mm, np.memmap) and mm.dtype == np.uint16 and len(mm) == 5000
    npy = load_tokens(tmp_path / "t.npy")
    assert isinstance(npy, np.memmap) and npy.dtype == np.uint32
    for data in (mm, npy):
        x, y = get_batch(data, 8, 64, "cpu", rng=np.random.default_rng(0))
        assert torch.equal(x + 1, y)
    assert load_tokens(tmp_path / "t.bin", dtype=np.uint8).shape == (10000,)
    with pytest.raises(ValueError):
        load_tokens(tmp_path / "t.txt")


def test_bad_device_and_short_dataset() -> None:
    data = np.arange(100, dtype=np.uint16)
    with pytest.raises((RuntimeError, ValueError), match="device"):
        get_batch(data, 2, 8, "not_a_device")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            get_batch(data, 2, 8, "cuda:0")
    with pytest.raises(ValueError, match="context_length"):
        get_batch(data, 2, 100, "cpu")
    x, _ = get_batch(data, 2, 99, "cpu")  # exactly long enough: one valid start
    assert torch.equal(x[0], torch.arange(99))
    x, y = get_batch(list(range(30)), 3, 5, "cpu")  # plain sequences work too
    assert torch.equal(x + 1, y)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_batch() -> None:
    x, y = get_batch(np.arange(1000, dtype=np.uint16), 4, 16, "cuda")
    assert x.is_cuda and y.is_cuda and torch.equal(x + 1, y)
