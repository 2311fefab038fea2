"""The plain PyTorch language model and training script that bpelm is measured against: what a
user would write themselves with `nn.Linear`, `nn.RMSNorm`, `F.scaled_dot_product_attention`
and `torch.optim.AdamW`, and no bpelm code at all.

The model has bpelm's shape (pre-norm RMSNorm, RoPE, SwiGLU, untied head) with the projections
a hand-written model usually fuses (one q/k/v matrix, one gate/up matrix). The script trains it
the way bpelm trains: random windows, AdamW with decay on matrices only, gradient clipping,
linear warmup then a cosine decay that follows wall-clock under a time budget, and a sampled
validation loss every `eval_every` steps. It writes its curve (`curve.json`) and final weights
(`model.pt`), and nothing else.

    python benches/plain_lm.py --train train.npy --valid valid.npy --shape '{...}' \
        --hparams '{...}' --budget-s 90 --out DIR [--device cuda --bf16 --compile]

`benches/bench_loss_race.py` runs it beside `bpelm train`; `bench_train_step.py` times its step.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class TorchBlock(nn.Module):
    def __init__(self, d: int, heads: int, d_ff: int, ctx: int, theta: float) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.RMSNorm(d, eps=1e-5), nn.RMSNorm(d, eps=1e-5)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.proj = nn.Linear(d, d, bias=False)
        self.w13 = nn.Linear(d, 2 * d_ff, bias=False)
        self.w2 = nn.Linear(d_ff, d, bias=False)
        dh = d // heads
        freqs = theta ** (-torch.arange(0, dh, 2).float() / dh)
        angles = torch.outer(torch.arange(ctx).float(), freqs)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def rope(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[-2]
        cos, sin = self.cos[:t], self.sin[:t]
        e, o = x[..., 0::2].float(), x[..., 1::2].float()
        return torch.stack((e * cos - o * sin, e * sin + o * cos), -1).flatten(-2).type_as(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, d // self.heads).unbind(2)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))
        att = F.scaled_dot_product_attention(self.rope(q), self.rope(k), v, is_causal=True)
        h = x + self.proj(att.transpose(1, 2).reshape(b, t, d))
        gate, up = self.w13(self.ln2(h)).chunk(2, dim=-1)
        return h + self.w2(F.silu(gate) * up)


class TorchLM(nn.Module):
    """Built from the keys of a bpelm `[model]` table (vocab_size, context_length, d_model,
    num_layers, num_heads, d_ff, rope_theta); other keys are ignored."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        d = cfg["d_model"]
        self.emb = nn.Embedding(cfg["vocab_size"], d)
        self.blocks = nn.ModuleList(
            TorchBlock(d, cfg["num_heads"], cfg["d_ff"], cfg["context_length"], cfg["rope_theta"])
            for _ in range(cfg["num_layers"])
        )
        self.ln_f = nn.RMSNorm(d, eps=1e-5)
        self.head = nn.Linear(d, cfg["vocab_size"], bias=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.emb(idx)
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))


@torch.no_grad()
def generate_plain(
    model: nn.Module, prompt: torch.Tensor, new_tokens: int, context_length: int
) -> torch.Tensor:
    """Sampling as a plain script does it: no cache, each new token from a full forward over
    the last `context_length` tokens; temperature 1, multinomial."""
    ids = prompt
    for _ in range(new_tokens):
        logits = model(ids[:, -context_length:])[:, -1].float()
        ids = torch.cat([ids, torch.multinomial(torch.softmax(logits, -1), 1)], dim=1)
    return ids


# ---------------------------------------------------------------- the training script


def batch(data: np.ndarray, b: int, t: int, gen: torch.Generator, device: torch.device):
    ix = torch.randint(len(data) - t - 1, (b,), generator=gen).tolist()
    xy = torch.from_numpy(np.stack([data[i : i + t + 1] for i in ix]).astype(np.int64))
    xy = xy.to(device, non_blocking=True)
    return xy[:, :-1], xy[:, 1:]


def lr_at(step: int, progress: float, hp: dict[str, Any]) -> float:
    """bpelm's schedule, as a user would write it: linear warmup then cosine to min_lr, over
    `progress` in [0, 1] (the larger of the step and the time fraction) x max_steps; the first
    warmup_steps steps warm up whatever the time fraction says."""
    it, warmup, total = progress * hp["max_steps"], hp["warmup_steps"], hp["max_steps"]
    if it < warmup or step < warmup:
        return hp["max_lr"] * min(it, step) / warmup
    cos = 0.5 * (1 + math.cos(math.pi * (it - warmup) / (total - warmup)))
    return hp["min_lr"] + cos * (hp["max_lr"] - hp["min_lr"])


def train(args: argparse.Namespace) -> dict[str, Any]:
    t0 = args.t0 if args.t0 else time.time()  # the race's clock: seconds since process start
    shape, hp = json.loads(args.shape), json.loads(args.hparams)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(hp.get("seed", 0))
    train_data = np.load(args.train, mmap_mode="r")
    valid = np.load(args.valid, mmap_mode="r")
    model = TorchLM(shape).to(device)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": hp["weight_decay"]}, {"params": no_decay}],
        lr=hp["max_lr"],
        betas=(hp["beta1"], hp["beta2"]),
        weight_decay=0.0,
        fused=device.type == "cuda",
    )
    forward = torch.compile(model) if args.compile else model
    amp = (
        torch.autocast(device.type, dtype=torch.bfloat16) if args.bf16 else contextlib.nullcontext()
    )
    b, t, vocab = hp["batch_size"], shape["context_length"], shape["vocab_size"]
    gen, val_gen_seed = torch.Generator().manual_seed(hp.get("seed", 0)), 1234

    def loss_of(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with amp:
            logits = forward(x)
        return F.cross_entropy(logits.float().view(-1, vocab), y.reshape(-1))

    @torch.no_grad()
    def val_loss() -> float:
        model.eval()
        g = torch.Generator().manual_seed(val_gen_seed)  # the same windows every time
        total = sum(loss_of(*batch(valid, b, t, g, device)) for _ in range(hp["eval_batches"]))
        model.train()
        return float(total) / hp["eval_batches"]

    curve: list[dict[str, Any]] = []
    start = time.time()
    deadline = t0 + args.budget_s
    # The final evaluation fits in the budget too (bpelm's does): keep what the last one took.
    eval_s, step_s = 0.0, 0.0
    step = 0
    while step < hp["max_steps"]:
        t_step = time.time()
        budget = deadline - 1.25 * eval_s - start  # the schedule's clock starts at step 1
        progress = max(step / hp["max_steps"], (t_step - start) / budget)
        if progress >= 1.0 or (step > 0 and t_step + step_s >= start + budget):
            break
        for group in opt.param_groups:
            group["lr"] = lr_at(step, progress, hp)
        loss = loss_of(*batch(train_data, b, t, gen, device))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), hp["grad_clip"])
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        if step % hp["log_every"] == 0:
            curve.append({"step": step, "time_s": time.time() - t0, "train_loss": loss.item()})
        step_s = time.time() - t_step
        if step % hp["eval_every"] == 0:
            t_eval = time.time()
            curve.append({"step": step, "time_s": time.time() - t0, "val_loss": val_loss()})
            eval_s = time.time() - t_eval
    curve.append({"step": step, "time_s": time.time() - t0, "val_loss": val_loss()})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out / "model.pt")
    summary = {"steps": step, "train_s": time.time() - start, "wall_s": time.time() - t0}
    (out / "curve.json").write_text(json.dumps({"summary": summary, "curve": curve}))
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--train", required=True, help="token array (.npy)")
    ap.add_argument("--valid", required=True, help="validation token array (.npy)")
    ap.add_argument("--shape", required=True, help="JSON: bpelm's [model] table")
    ap.add_argument("--hparams", required=True, help="JSON: bpelm's [train] table")
    ap.add_argument("--budget-s", type=float, required=True, help="seconds from --t0 to stop at")
    ap.add_argument("--t0", type=float, default=None, help="process start (time.time())")
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: its default)")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model")
    print(json.dumps(train(ap.parse_args(argv))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
