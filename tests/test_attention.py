"""Attention and the Transformer LM: reference math vs PyTorch, fast path vs reference,
state-dict names, ablations, and the static KV cache."""

from __future__ import annotations

import io
import shutil

import pytest
import torch
import torch.nn.functional as F
from bpelm.nn import (
    ModelConfig,
    MultiHeadSelfAttention,
    TransformerBlock,
    TransformerLM,
    cross_entropy,
    scaled_dot_product_attention,
)
from hypothesis import given, settings
from hypothesis import strategies as st

TINY = {
    "vocab_size": 97,
    "context_length": 24,
    "d_model": 32,
    "num_layers": 2,
    "num_heads": 4,
    "d_ff": 64,
    "rope_theta": 10000.0,
}


def tiny_lm(**overrides: object) -> TransformerLM:
    torch.manual_seed(0)
    return TransformerLM(ModelConfig(**{**TINY, **overrides}))  # type: ignore[arg-type]


@settings(max_examples=30, deadline=None)
@given(
    lead=st.lists(st.integers(1, 3), min_size=0, max_size=2),
    n_q=st.integers(1, 9),
    n_k=st.integers(1, 9),
    d_k=st.integers(1, 16),
    d_v=st.integers(1, 16),
    seed=st.integers(0, 2**16),
    masked=st.booleans(),
)
def test_sdpa_matches_torch(
    lead: list[int], n_q: int, n_k: int, d_k: int, d_v: int, seed: int, masked: bool
) -> None:
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(*lead, n_q, d_k, generator=g, dtype=torch.float64)
    k = torch.randn(*lead, n_k, d_k, generator=g, dtype=torch.float64)
    v = torch.randn(*lead, n_k, d_v, generator=g, dtype=torch.float64)
    mask = None
    if masked:
        mask = torch.rand(*lead, n_q, n_k, generator=g) < 0.6
        mask[..., 0] = True  # every query sees at least one key (an empty row is undefined)
    ours = scaled_dot_product_attention(q, k, v, mask)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(ours, ref)


def manual_mhsa(attn: MultiHeadSelfAttention, x: torch.Tensor) -> torch.Tensor:
    """Causal MHSA from PyTorch ops, with RoPE written inline."""
    b, t, d = x.shape
    h, dh = attn.num_heads, attn.d_head

    def heads(w: torch.Tensor) -> torch.Tensor:
        return F.linear(x, w).view(b, t, h, dh).transpose(1, 2)

    q, k, v = heads(attn.q_proj.weight), heads(attn.k_proj.weight), heads(attn.v_proj.weight)
    if attn.rope is not None:
        cos, sin = attn.rope.cos[:t], attn.rope.sin[:t]

        def rot(z: torch.Tensor) -> torch.Tensor:
            e, o = z[..., 0::2], z[..., 1::2]
            return torch.stack((e * cos - o * sin, e * sin + o * cos), -1).flatten(-2)

        q, k = rot(q), rot(k)
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return F.linear(out.transpose(1, 2).reshape(b, t, d), attn.output_proj.weight)


@pytest.mark.parametrize("theta", [None, 10000.0])
@pytest.mark.parametrize("impl", ["reference", "sdpa"])
def test_mhsa_matches_manual(theta: float | None, impl: str) -> None:
    torch.manual_seed(0)
    attn = MultiHeadSelfAttention(32, 4, context_length=16, theta=theta, attention=impl)
    x = torch.randn(3, 11, 32)
    torch.testing.assert_close(attn(x), manual_mhsa(attn, x), atol=1e-5, rtol=1e-5)


def test_mhsa_is_causal() -> None:
    torch.manual_seed(0)
    attn = MultiHeadSelfAttention(16, 2, context_length=8, theta=10000.0)
    x = torch.randn(1, 8, 16)
    y = x.clone()
    y[:, 5:] += 1.0
    torch.testing.assert_close(attn(x)[:, :5], attn(y)[:, :5])
    assert not torch.allclose(attn(x)[:, 5:], attn(y)[:, 5:])


def test_block_prenorm_formula() -> None:
    torch.manual_seed(0)
    block = TransformerBlock(32, 4, 64, 16, 10000.0)
    x = torch.randn(2, 7, 32)
    h = x + block.attn(block.ln1(x))
    torch.testing.assert_close(block(x), h + block.ffn(block.ln2(h)))
    post = TransformerBlock(32, 4, 64, 16, 10000.0, norm_position="post")
    h = post.ln1(x + post.attn(x))
    torch.testing.assert_close(post(x), post.ln2(h + post.ffn(h)))


def expected_keys(num_layers: int) -> list[str]:
    keys = ["token_embeddings.weight"]
    for i in range(num_layers):
        keys += [f"layers.{i}.attn.{p}_proj.weight" for p in ("q", "k", "v", "output")]
        keys += [f"layers.{i}.ln1.weight"]
        keys += [f"layers.{i}.ffn.w{j}.weight" for j in (1, 2, 3)]
        keys += [f"layers.{i}.ln2.weight"]
    return keys + ["ln_final.weight", "lm_head.weight"]


def test_state_dict_keys_and_round_trip() -> None:
    model = tiny_lm()
    sd = model.state_dict()
    assert sorted(sd) == sorted(expected_keys(2))
    assert sd["layers.1.ffn.w1.weight"].shape == (64, 32)
    assert sd["layers.1.ffn.w2.weight"].shape == (32, 64)
    buf = io.BytesIO()
    torch.save(sd, buf)
    buf.seek(0)
    torch.manual_seed(1)
    other = TransformerLM(ModelConfig(**TINY))  # type: ignore[arg-type]
    other.load_state_dict(torch.load(buf, weights_only=True))
    ids = torch.randint(0, 97, (2, 10))
    torch.testing.assert_close(other(ids), model(ids))


def test_config_rebuilds_the_model() -> None:
    model = tiny_lm(ffn="silu", d_ff=128, tie_embeddings=True)
    assert model.config.ffn == "silu" and model.config.d_ff == 128
    clone = TransformerLM(ModelConfig.from_dict(model.config.to_dict()))
    clone.load_state_dict(model.state_dict())
    ids = torch.randint(0, 97, (1, 6))
    torch.testing.assert_close(clone(ids), model(ids))


def test_load_state_dict_accepts_compiled_prefix() -> None:
    model = tiny_lm()
    prefixed = {f"_orig_mod.{k}": v for k, v in model.state_dict().items()}
    torch.manual_seed(5)
    other = TransformerLM(ModelConfig(**TINY))  # type: ignore[arg-type]
    other.load_state_dict(prefixed)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(other.state_dict()[k], v)


def test_fast_path_equals_reference() -> None:
    ref = tiny_lm(kernels="reference")
    fast = tiny_lm(attention="sdpa")
    fast.load_state_dict(ref.state_dict())
    ids = torch.randint(0, 97, (3, 24))
    targets = torch.randint(0, 97, (3, 24))
    out_ref, out_fast = ref(ids), fast(ids)
    torch.testing.assert_close(out_fast, out_ref, atol=1e-5, rtol=1e-5)
    cross_entropy(out_ref, targets).backward()
    cross_entropy(out_fast, targets).backward()
    for (name, p_ref), p_fast in zip(ref.named_parameters(), fast.parameters()):
        torch.testing.assert_close(p_fast.grad, p_ref.grad, atol=1e-5, rtol=1e-4, msg=name)


def test_auto_attention_follows_kernels() -> None:
    assert tiny_lm().layers[0].attn.attention == "sdpa"  # kernels="fused", attention="auto"
    assert tiny_lm(kernels="reference").layers[0].attn.attention == "reference"
    assert tiny_lm(kernels="reference", attention="sdpa").layers[0].attn.attention == "sdpa"


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fused_kernels_equal_reference(dtype: torch.dtype) -> None:
    """kernels="fused" (SDPA, F.rms_norm, F.silu, F.cross_entropy) computes what our reference
    arithmetic does: logits, loss and every gradient, also under bf16 autocast."""
    from bpelm.nn.kernels import cross_entropy as model_loss
    from bpelm.nn.kernels import uses_fused

    ref, fast = tiny_lm(kernels="reference"), tiny_lm()
    assert uses_fused(fast) and not uses_fused(ref)
    assert all(m.fused for m in fast.modules() if hasattr(m, "fused"))
    assert not any(m.fused for m in ref.modules() if hasattr(m, "fused"))
    ids, targets = torch.randint(0, 97, (3, 24)), torch.randint(0, 97, (3, 24))
    tol = {"atol": 1e-5, "rtol": 1e-4} if dtype == torch.float32 else {"atol": 2e-2, "rtol": 2e-2}
    losses = []
    for model in (ref, fast):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype != torch.float32):
            logits = model(ids)
            loss = model_loss(logits, targets, uses_fused(model))
        assert loss.dtype == torch.float32
        loss.backward()
        losses.append((logits.float(), loss))
    torch.testing.assert_close(losses[1][0], losses[0][0], **tol)
    torch.testing.assert_close(losses[1][1], losses[0][1], **tol)
    for (name, p_ref), p_fast in zip(ref.named_parameters(), fast.parameters()):
        torch.testing.assert_close(p_fast.grad, p_ref.grad, **tol, msg=name)


def test_shorter_sequences_and_leading_dims() -> None:
    model = tiny_lm()
    ids = torch.randint(0, 97, (2, 5))
    logits = model(ids)
    assert logits.shape == (2, 5, 97)
    # A prefix's logits do not depend on what follows (causal).
    torch.testing.assert_close(model(ids[:, :3]), logits[:, :3], atol=1e-5, rtol=1e-5)
    assert model(ids[0]).shape == (5, 97)


@pytest.mark.parametrize(
    "overrides",
    [
        {"norm": "none"},
        {"norm_position": "post"},
        {"position": "nope"},
        {"ffn": "silu", "d_ff": 128},
        {"tie_embeddings": True},
        {"attention": "sdpa", "position": "nope", "norm_position": "post"},
    ],
)
def test_ablations_forward_backward(overrides: dict[str, object]) -> None:
    model = tiny_lm(**overrides)
    ids = torch.randint(0, 97, (2, 12))
    loss = cross_entropy(model(ids), torch.randint(0, 97, (2, 12)))
    loss.backward()
    assert torch.isfinite(loss)
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_ablation_structure() -> None:
    assert not any("ln" in k for k in tiny_lm(norm="none").state_dict())
    nope = tiny_lm(position="nope")
    assert all(layer.attn.rope is None for layer in nope.layers)
    assert "w3" not in str(tiny_lm(ffn="silu", d_ff=128))
    tied = tiny_lm(tie_embeddings=True)
    assert tied.lm_head.weight is tied.token_embeddings.weight
    assert tied.lm_head.weight.abs().max() <= 3 * (2 / (97 + 32)) ** 0.5 + 1e-7  # lm_head init
    assert set(tied.state_dict()) == set(tiny_lm().state_dict())
    assert tied.num_params() == tiny_lm().num_params()  # shared table counted once, as lm_head
    with pytest.raises(ValueError):
        tiny_lm(norm="layernorm")


def test_num_params_and_flops() -> None:
    model = tiny_lm()
    total = sum(p.numel() for p in model.parameters())
    assert model.num_params(non_embedding=False) == total
    assert model.num_params() == total - 97 * 32
    per_layer_matmul = 4 * 32 * 32 + 3 * 32 * 64
    n_matmul = 2 * per_layer_matmul + 97 * 32
    assert model.flops_per_token() == 6 * n_matmul + 12 * 2 * 32 * 24
    assert model.flops_per_token(8) == 6 * n_matmul + 12 * 2 * 32 * 8


def test_bf16_autocast_forward() -> None:
    model = tiny_lm(attention="sdpa")
    ids = torch.randint(0, 97, (2, 12))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(ids)
    assert logits.dtype == torch.bfloat16
    torch.testing.assert_close(logits.float(), model(ids), atol=0.15, rtol=0.05)


@pytest.mark.parametrize("attention", ["reference", "sdpa"])
def test_kv_cache_matches_full_forward(attention: str) -> None:
    model = tiny_lm(attention=attention)
    ids = torch.randint(0, 97, (2, 20))
    full = model(ids)
    cache = model.make_kv_cache(2)
    parts = [model(ids[:, :7], kv_cache=cache)]
    parts += [model(ids[:, t : t + 1], kv_cache=cache) for t in range(7, 20)]
    assert int(cache.length) == 20
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-5, rtol=1e-5)
    cache.reset()
    torch.testing.assert_close(model(ids[:, :4], kv_cache=cache), full[:, :4], atol=1e-5, rtol=1e-5)


def inductor_usable() -> bool:
    return shutil.which("cc") is not None or shutil.which("gcc") is not None


@pytest.mark.slow
def test_compiled_fast_path_equals_reference() -> None:
    if not inductor_usable():
        pytest.skip("torch.compile on CPU needs a C++ compiler (none found on PATH)")
    ref = tiny_lm(attention="reference")
    fast = tiny_lm(attention="sdpa")

    def logits_and_loss(ids: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits = fast(ids)
        return logits, cross_entropy(logits, targets)

    step = torch.compile(logits_and_loss, fullgraph=True)  # as the training loop compiles it
    ids, targets = torch.randint(0, 97, (2, 16)), torch.randint(0, 97, (2, 16))
    try:
        out, loss = step(ids, targets)
    except Exception as exc:  # a broken C++ toolchain is the environment's failure, not ours
        toolchain = ("CppCompileError", "InvalidCxxCompiler", "Python.h", "cpp_builder")
        if any(marker in f"{type(exc).__name__}: {exc}" for marker in toolchain):
            pytest.skip(f"inductor cannot build C++ here: {type(exc).__name__}")
        raise
    torch.testing.assert_close(out, ref(ids), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(loss, cross_entropy(ref(ids), targets), atol=1e-5, rtol=1e-5)
    # Saved from the compiled wrapper, the keys carry `_orig_mod.` and still load.
    sd = torch.compile(fast).state_dict()
    assert all(k.startswith("_orig_mod.") for k in sd)
    fresh = tiny_lm(attention="reference")
    fresh.load_state_dict(sd)
    torch.testing.assert_close(fresh(ids), ref(ids))
