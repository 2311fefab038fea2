"""Layers and functions of bpelm.nn against PyTorch's own implementations."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from bpelm.nn import (
    Embedding,
    Linear,
    RMSNorm,
    RotaryPositionalEmbedding,
    SiLUFFN,
    SwiGLU,
    cross_entropy,
    default_d_ff,
    silu,
    softmax,
)
from hypothesis import given, settings
from hypothesis import strategies as st

shapes = st.lists(st.integers(1, 6), min_size=1, max_size=4)


def randn(shape: list[int], seed: int, scale: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64) * scale


@settings(max_examples=40, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**16), scale=st.sampled_from([1.0, 100.0, 1000.0]))
def test_softmax_matches_torch(shape: list[int], seed: int, scale: float) -> None:
    x = randn(shape, seed, scale)
    for dim in range(-len(shape), len(shape)):
        torch.testing.assert_close(softmax(x, dim), F.softmax(x, dim=dim))


def test_softmax_huge_inputs_are_finite() -> None:
    x = torch.tensor([[1e4, 1e4 - 1.0, -1e4]], dtype=torch.float32)
    out = softmax(x, -1)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, F.softmax(x, -1))


@settings(max_examples=30, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**16))
def test_silu_matches_torch(shape: list[int], seed: int) -> None:
    x = randn(shape, seed, 5.0)
    torch.testing.assert_close(silu(x), F.silu(x))


@settings(max_examples=30, deadline=None)
@given(
    lead=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    vocab=st.integers(2, 50),
    seed=st.integers(0, 2**16),
    scale=st.sampled_from([1.0, 1000.0]),
)
def test_cross_entropy_matches_torch(lead: list[int], vocab: int, seed: int, scale: float) -> None:
    logits = randn([*lead, vocab], seed, scale)
    g = torch.Generator().manual_seed(seed + 1)
    targets = torch.randint(0, vocab, lead, generator=g)
    ours = cross_entropy(logits, targets)
    ref = F.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1))
    assert torch.isfinite(ours)
    torch.testing.assert_close(ours, ref)


def test_cross_entropy_bf16_logits_and_gradient() -> None:
    logits = randn([4, 7, 33], 0, 30.0).float().requires_grad_()
    targets = torch.randint(0, 33, (4, 7), generator=torch.Generator().manual_seed(0))
    cross_entropy(logits, targets).backward()
    ref = logits.detach().clone().requires_grad_()
    F.cross_entropy(ref.reshape(-1, 33), targets.reshape(-1)).backward()
    torch.testing.assert_close(logits.grad, ref.grad)
    # bf16 logits are computed in float32, so the loss is float32.
    assert cross_entropy(logits.detach().bfloat16(), targets).dtype == torch.float32


@settings(max_examples=30, deadline=None)
@given(
    lead=st.lists(st.integers(1, 4), min_size=0, max_size=3),
    d=st.integers(1, 40),
    seed=st.integers(0, 2**16),
)
def test_rmsnorm_matches_torch(lead: list[int], d: int, seed: int) -> None:
    x = randn([*lead, d], seed, 3.0).float()
    norm = RMSNorm(d)
    with torch.no_grad():
        norm.weight.copy_(randn([d], seed + 1).float())
    ref = F.rms_norm(x, (d,), norm.weight, eps=1e-5)
    torch.testing.assert_close(norm(x), ref)


def test_rmsnorm_computes_in_float32_and_keeps_dtype() -> None:
    x = (randn([3, 64], 1) * 1e3).bfloat16()
    out = RMSNorm(64)(x)
    assert out.dtype == torch.bfloat16
    ref = (x.float() / x.float().pow(2).mean(-1, keepdim=True).add(1e-5).sqrt()).bfloat16()
    torch.testing.assert_close(out, ref)


def test_linear_matches_torch_and_init_statistics() -> None:
    torch.manual_seed(0)
    layer = Linear(300, 500)
    assert layer.weight.shape == (500, 300)
    std = math.sqrt(2 / 800)
    w = layer.weight.detach()
    assert w.abs().max() <= 3 * std + 1e-7
    # Truncating N(0, s) at 3s leaves std ~0.9866 s.
    assert abs(w.std().item() / std - 0.9866) < 0.02
    assert abs(w.mean().item()) < 0.02 * std * 10
    x = randn([2, 3, 300], 2).float()
    torch.testing.assert_close(layer(x), F.linear(x, layer.weight))
    assert not any(name == "bias" for name, _ in layer.named_parameters())


def test_embedding_matches_torch_and_init_statistics() -> None:
    torch.manual_seed(0)
    emb = Embedding(1000, 64)
    w = emb.weight.detach()
    assert w.shape == (1000, 64)
    assert w.abs().max() <= 3.0
    assert abs(w.std().item() - 0.9866) < 0.02
    ids = torch.randint(0, 1000, (4, 9))
    torch.testing.assert_close(emb(ids), F.embedding(ids, emb.weight))


def test_swiglu_and_silu_ffn_match_manual() -> None:
    torch.manual_seed(0)
    ffn = SwiGLU(32, 64)
    x = randn([2, 5, 32], 3).float()
    ref = F.linear(F.silu(F.linear(x, ffn.w1.weight)) * F.linear(x, ffn.w3.weight), ffn.w2.weight)
    torch.testing.assert_close(ffn(x), ref)
    plain = SiLUFFN(32, 128)
    ref = F.linear(F.silu(F.linear(x, plain.w1.weight)), plain.w2.weight)
    torch.testing.assert_close(plain(x), ref)
    assert SwiGLU(512).w1.weight.shape == (1408, 512)  # 8/3 * 512 = 1365.3 -> 1408
    assert default_d_ff(96) == 256


def rope_complex(x: torch.Tensor, positions: torch.Tensor, theta: float) -> torch.Tensor:
    """Reference: pairs as complex numbers multiplied by exp(i * pos * theta^(-2k/d))."""
    d = x.shape[-1]
    freqs = theta ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    angles = positions.to(torch.float64).unsqueeze(-1) * freqs
    z = torch.view_as_complex(x.to(torch.float64).reshape(*x.shape[:-1], d // 2, 2).contiguous())
    return torch.view_as_real(z * torch.polar(torch.ones_like(angles), angles)).flatten(-2)


@settings(max_examples=20, deadline=None)
@given(
    batch=st.integers(1, 3),
    seq=st.integers(1, 12),
    half_d=st.integers(1, 8),
    seed=st.integers(0, 2**16),
)
def test_rope_matches_complex_formulation(batch: int, seq: int, half_d: int, seed: int) -> None:
    d = 2 * half_d
    rope = RotaryPositionalEmbedding(10000.0, d, context_length=64)
    x = randn([batch, seq, d], seed).float()
    g = torch.Generator().manual_seed(seed)
    positions = torch.randint(0, 64, (batch, seq), generator=g)
    ref = rope_complex(x, positions, 10000.0).float()
    torch.testing.assert_close(rope(x, positions), ref, atol=1e-5, rtol=1e-5)
    # Positions broadcast over leading dims (here a head axis), and None means 0..seq-1.
    xh = randn([batch, 3, seq, d], seed + 1).float()
    ref = rope_complex(xh, torch.arange(seq), 10000.0).float()
    torch.testing.assert_close(rope(xh, torch.arange(seq)), ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rope(xh), ref, atol=1e-5, rtol=1e-5)


def test_rope_buffers_are_not_saved() -> None:
    assert RotaryPositionalEmbedding(10000.0, 8, 16).state_dict() == {}


def test_layers_take_device_and_dtype() -> None:
    assert Linear(4, 8, dtype=torch.float64).weight.dtype == torch.float64
    assert Embedding(4, 8, device="cpu", dtype=torch.bfloat16).weight.dtype == torch.bfloat16
    assert RMSNorm(8, dtype=torch.float64).weight.dtype == torch.float64
    with pytest.raises(ValueError):
        RotaryPositionalEmbedding(10000.0, 7, 16)
