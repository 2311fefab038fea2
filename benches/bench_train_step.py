"""Training-step throughput and MFU of bpelm's model vs a plain PyTorch model of the same shape,
plus KV-cached decoding speed.

Shape: the 17M TinyStories model (vocab 10000, context 256, d_model 512, 4 layers, 16 heads,
d_ff 1344), batch 128. A step is forward + cross-entropy + backward + grad clipping + AdamW.
Batches are random token ids already on the device, so data loading is not measured.

Usage (an H100):   python benches/bench_train_step.py --out bench_train_step.json
CPU smoke run:     python benches/bench_train_step.py --device cpu --steps 3 --warmup 1 \
                       --batch-size 2 --decode-tokens 8 --skip-compile

MFU = flops_per_token * tokens/s / peak, with flops_per_token = 6 N_matmul + 12 L d T (PaLM
convention, see TransformerLM.flops_per_token). Peaks: H100 SXM bf16 dense tensor 989.5 TFLOP/s
for bf16 modes, fp32 non-tensor 67 TFLOP/s for fp32 modes (PyTorch's default fp32 matmul does
not use TF32). On other devices the same peaks are printed but MFU means little.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # the plain PyTorch baseline only
from bpelm.generate import generate
from bpelm.nn import ModelConfig, TransformerLM
from bpelm.training.evaluation import lm_loss
from bpelm.training.optim import AdamW, clip_grad_norm
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plain_lm import TorchLM, generate_plain  # noqa: E402  (the plain PyTorch baseline, beside this file)

REPO = Path(__file__).resolve().parent.parent

PEAK_BF16 = 989.5e12  # H100 SXM, dense bf16 tensor core
PEAK_FP32 = 67e12  # H100 SXM, fp32 non-tensor
MODEL = {
    "vocab_size": 10000,
    "context_length": 256,
    "d_model": 512,
    "num_layers": 4,
    "num_heads": 16,
    "d_ff": 1344,
    "rope_theta": 10000.0,
}


# ---------------------------------------------------------------- modes
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Mode:
    build: Callable[[torch.device], tuple[nn.Module, torch.optim.Optimizer, LossFn]]
    bf16: bool  # run forward under bf16 autocast
    clip: Callable[[list[torch.Tensor]], torch.Tensor]
    optimizer: str


def bpelm_mode(kernels: str, bf16: bool, compile_: bool, optimizer: str) -> Mode:
    """bpelm's model and AdamW; `optimizer` is "loop" (the formula per parameter), "foreach"
    or "fused" (PyTorch's fused kernel, the default `bpelm train` uses)."""

    def build(device: torch.device) -> tuple[nn.Module, Any, Callable[..., torch.Tensor]]:
        model = TransformerLM(ModelConfig(**MODEL, kernels=kernels), device=device)  # type: ignore[arg-type]
        opt = AdamW(
            model.parameters(),
            lr=1e-3,
            weight_decay=0.1,
            foreach=optimizer == "foreach",
            fused=optimizer == "fused",
        )

        def loss_fn(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return lm_loss(model, x, y)  # the training loop's own loss

        if compile_:
            loss_fn = torch.compile(loss_fn, fullgraph=True)
        return model, opt, loss_fn

    def clip(ps: list[torch.Tensor]) -> torch.Tensor:
        return clip_grad_norm(ps, 1.0)

    return Mode(build, bf16, clip, f"bpelm AdamW {optimizer}")


def torch_mode(bf16: bool, compile_: bool) -> Mode:
    def build(device: torch.device) -> tuple[nn.Module, Any, Callable[..., torch.Tensor]]:
        model = TorchLM(MODEL).to(device)
        fused = device.type == "cuda"
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1, fused=fused)

        def loss_fn(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(model(x).flatten(0, 1).float(), y.flatten())

        if compile_:
            loss_fn = torch.compile(loss_fn, fullgraph=True)
        return model, opt, loss_fn

    def clip(ps: list[torch.Tensor]) -> torch.Tensor:
        return torch.nn.utils.clip_grad_norm_(ps, 1.0)

    return Mode(build, bf16, clip, "torch.optim.AdamW(fused=True on CUDA)")


MODES: dict[str, Mode] = {
    "torch fp32 eager": torch_mode(bf16=False, compile_=False),
    "torch bf16+sdpa+compile": torch_mode(bf16=True, compile_=True),
    # Our own arithmetic throughout (kernels="reference"), the optimizer formula per parameter.
    "bpelm fp32 reference": bpelm_mode("reference", bf16=False, compile_=False, optimizer="loop"),
    # The fast path: fused kernels and fused AdamW; fp32 eager as `bpelm train` runs on a CPU,
    # bf16 + compile as it runs on CUDA (train.dtype and train.compile "auto").
    "bpelm fp32 fused": bpelm_mode("fused", bf16=False, compile_=False, optimizer="fused"),
    "bpelm bf16+fused+compile": bpelm_mode("fused", bf16=True, compile_=True, optimizer="fused"),
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_mode(
    name: str, device: torch.device, batch: int, steps: int, warmup: int
) -> dict[str, Any]:
    mode = MODES[name]
    torch.manual_seed(0)
    model, opt, loss_fn = mode.build(device)
    params = list(model.parameters())
    ctx = MODEL["context_length"]
    x = torch.randint(0, MODEL["vocab_size"], (batch, ctx), device=device)
    y = torch.randint(0, MODEL["vocab_size"], (batch, ctx), device=device)
    amp = (
        torch.autocast(device.type, dtype=torch.bfloat16) if mode.bf16 else contextlib.nullcontext()
    )

    def step() -> torch.Tensor:
        with amp:
            loss = loss_fn(x, y)
        loss.backward()
        mode.clip(params)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(warmup):
        step()
    sync(device)
    warmup_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    sync(device)
    elapsed = time.perf_counter() - t0
    tokens_per_s = batch * ctx * steps / elapsed
    ref = TransformerLM(ModelConfig(**MODEL), device="meta")  # type: ignore[arg-type]
    flops = ref.flops_per_token()
    peak = PEAK_BF16 if mode.bf16 else PEAK_FP32
    result = {
        "mode": name,
        "optimizer": mode.optimizer,
        "steps": steps,
        "warmup_steps": warmup,
        "warmup_s": warmup_s,
        "ms_per_step": 1000 * elapsed / steps,
        "tokens_per_s": tokens_per_s,
        "flops_per_token": flops,
        "peak_flops": peak,
        "peak_name": "bf16 dense 989.5 TFLOP/s" if mode.bf16 else "fp32 non-tensor 67 TFLOP/s",
        "mfu": flops * tokens_per_s / peak,
        "final_loss": float(loss.detach()),
        "max_memory_gib": (
            torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
        ),
    }
    return result


def run_decode(
    device: torch.device, batch: int, new_tokens: int, use_cache: bool, compile_step: bool = False
) -> dict[str, Any]:
    torch.manual_seed(0)
    model = TransformerLM(ModelConfig(**MODEL), device=device)  # type: ignore[arg-type]
    prompt = list(range(1, 17))

    def once() -> float:
        sync(device)
        t0 = time.perf_counter()
        n = 0
        for _ in generate(
            model,
            prompt,
            max_new_tokens=new_tokens,
            temperature=1.0,
            top_p=0.9,
            num_samples=batch,
            seed=0,
            use_cache=use_cache,
            compile_step=compile_step,
        ):
            n += 1
        sync(device)
        assert n == new_tokens
        return time.perf_counter() - t0

    once()  # warm kernels / compile (each call's graph capture is part of the timed run)
    elapsed = once()
    return {
        "batch": batch,
        "new_tokens": new_tokens,
        "prompt_tokens": len(prompt),
        "kv_cache": use_cache,
        "compiled_step": compile_step,
        "seconds": elapsed,
        "tokens_per_s": batch * new_tokens / elapsed,
        "steps_per_s": new_tokens / elapsed,
    }


def run_plain_decode(device: torch.device, batch: int, new_tokens: int) -> dict[str, Any]:
    """The baseline a plain script gives: TorchLM with no cache, every token a full forward
    over the sequence so far (plain_lm.generate_plain)."""
    torch.manual_seed(0)
    model = TorchLM(MODEL).to(device).eval()
    prompt = torch.arange(1, 17, device=device).repeat(batch, 1)

    def once() -> float:
        sync(device)
        t0 = time.perf_counter()
        out = generate_plain(model, prompt, new_tokens, MODEL["context_length"])
        sync(device)
        assert out.shape == (batch, 16 + new_tokens)
        return time.perf_counter() - t0

    once()
    elapsed = once()
    return {
        "batch": batch,
        "new_tokens": new_tokens,
        "prompt_tokens": 16,
        "kv_cache": False,
        "compiled_step": False,
        "plain_pytorch": True,
        "seconds": elapsed,
        "tokens_per_s": batch * new_tokens / elapsed,
        "steps_per_s": new_tokens / elapsed,
    }


def environment(device: torch.device) -> dict[str, Any]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = ""
    env = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "git_commit": commit,
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["cuda"] = torch.version.cuda
    return env


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--device", default=None, help="default: cuda; cpu only for smoke runs")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--modes", nargs="*", default=list(MODES), choices=list(MODES))
    ap.add_argument("--skip-compile", action="store_true", help="drop the torch.compile modes")
    ap.add_argument("--decode-tokens", type=int, default=200, help="0 skips the decode test")
    ap.add_argument("--decode-batches", type=int, nargs="*", default=[1, 64])
    ap.add_argument(
        "--plain-decode", action="store_true", help="also decode with TorchLM, no cache"
    )
    ap.add_argument("--model-json", default=None, help="JSON overriding the model's shape")
    ap.add_argument("--out", type=Path, default=None, help="write results as JSON here")
    args = ap.parse_args(argv)
    if args.model_json:
        MODEL.update(json.loads(args.model_json))

    if args.device is None:
        if not torch.cuda.is_available():
            print("bench_train_step: no CUDA device; skipping (pass --device cpu for a smoke run)")
            return 0
        args.device = "cuda"
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 modes measured as true fp32
    modes = [m for m in args.modes if not (args.skip_compile and "compile" in m)]
    env = environment(device)
    print(f"bench_train_step: {env}")
    print(f"model {MODEL}, batch {args.batch_size}, {args.steps} timed steps after {args.warmup}")

    results = []
    for name in modes:
        r = run_mode(name, device, args.batch_size, args.steps, args.warmup)
        if device.type == "cuda":
            torch.cuda.empty_cache()  # the mode's model and optimizer are gone now
        results.append(r)
        print(
            f"  {name:<26} {r['tokens_per_s']:>12,.0f} tok/s  {r['ms_per_step']:8.2f} ms/step"
            f"  MFU {100 * r['mfu']:5.1f}% (of {r['peak_name']})"
        )

    decode = []
    if device.type == "cuda":
        print("decode: kv-cache steps replay a CUDA graph (a warning above says if capture failed)")
    if args.decode_tokens > 0:
        for batch in args.decode_batches:
            decode.append(run_decode(device, batch, args.decode_tokens, use_cache=True))
            if not args.skip_compile:
                decode.append(
                    run_decode(device, batch, args.decode_tokens, use_cache=True, compile_step=True)
                )
        decode.append(run_decode(device, 1, args.decode_tokens, use_cache=False))
        if args.plain_decode:
            for batch in args.decode_batches:
                decode.append(run_plain_decode(device, batch, args.decode_tokens))

    print()
    print(f"{'mode':<26} {'optimizer':<38} {'tok/s':>12} {'ms/step':>9} {'MFU':>7}  peak")
    for r in results:
        print(
            f"{r['mode']:<26} {r['optimizer']:<38} {r['tokens_per_s']:>12,.0f}"
            f" {r['ms_per_step']:>9.2f} {100 * r['mfu']:>6.1f}%  {r['peak_name']}"
        )
    if decode:
        print()
        print(f"{'decode':<10} {'batch':>5} {'new tokens':>10} {'tokens/s':>12} {'steps/s':>9}")
        for d in decode:
            label = "plain" if d.get("plain_pytorch") else "recompute"
            if d["kv_cache"]:
                label = "kv+compile" if d["compiled_step"] else "kv-cache"
            print(
                f"{label:<10} {d['batch']:>5} {d['new_tokens']:>10}"
                f" {d['tokens_per_s']:>12,.0f} {d['steps_per_s']:>9,.1f}"
            )
    if args.out is not None:
        payload = {
            "environment": env,
            "model": MODEL,
            "batch_size": args.batch_size,
            "train": results,
            "decode": decode,
        }
        args.out.write_text(json.dumps(payload, indent=2))
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
