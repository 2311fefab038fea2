"""Sampling from a TransformerLM: temperature / top-k / top-p, with a static KV cache.

With the cache, the prompt is run once (prefill) and each new token costs one single-token
forward over the preallocated cache. The decode step has the same shapes at every length, so on
CUDA it is captured once in a CUDA graph and replayed, which removes the per-kernel launch cost
that dominates small-batch decoding. Once the context window is full the cache cannot slide
(RoPE positions would shift), so from then on every step recomputes the last context_length
tokens without it: exactly what the uncached path does, token for token.
"""

from __future__ import annotations

import functools
import math
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import IO, Any

from bpelm._extras import require

require("torch", "bpelm.generate")

import torch

from bpelm.nn.functional import softmax
from bpelm.nn.kv_cache import KVCache
from bpelm.nn.transformer import TransformerLM

__all__ = ["generate", "sample_next"]

GREEDY_TEMPERATURE = 1e-5


def sample_next(
    logits: torch.Tensor,
    *,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw one id per row of `logits` (B, V) -> (B,).

    temperature <= 1e-5 is argmax. top_k > 0 keeps the k largest logits. top_p < 1 keeps the
    smallest set of tokens, by descending probability, whose mass reaches top_p (at least one).
    """
    logits = logits.float()
    if temperature <= GREEDY_TEMPERATURE:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if 0 < top_k < logits.shape[-1]:
        values, indices = logits.topk(top_k, dim=-1)
        logits = torch.full_like(logits, float("-inf")).scatter(-1, indices, values)
    if top_p < 1.0:
        probs, order = softmax(logits, dim=-1).sort(dim=-1, descending=True)
        mass_before = probs.cumsum(dim=-1) - probs
        # A token is dropped when the tokens ranked above it already reach top_p; the first
        # token never is.
        drop_sorted = mass_before >= top_p
        drop_sorted[..., 0] = False
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    probs = softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


class _DecodeStep:
    """One-token forward through the cache: (B,) ids -> (B, V) logits.

    On CUDA the forward is captured in a CUDA graph over static input/output buffers; elsewhere
    (or if capture fails) it runs eagerly. With `compile_step` the forward is first compiled
    (fullgraph, static shapes), which fuses its many small kernels; the graph then replays the
    fused ones. The cache length advances inside the step either way.
    """

    def __init__(self, model: TransformerLM, cache: KVCache, compile_step: bool = False) -> None:
        self.model = model
        self.cache = cache
        self.graph: torch.cuda.CUDAGraph | None = None
        self.compile_step = compile_step
        device = cache.length.device
        self.static_ids = torch.zeros(cache.batch_size, 1, dtype=torch.long, device=device)
        if device.type == "cuda":
            self._capture()

    def forward(self) -> torch.Tensor:
        fn = _compiled_decode_forward() if self.compile_step else _decode_forward
        return fn(self.model, self.static_ids, self.cache)

    def _capture(self) -> None:
        start = self.cache.length.clone()
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(2):  # compile, warm up kernels and allocator outside the graph
                    self.forward()
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self.static_logits = self.forward()
            self.graph = graph
        except RuntimeError as exc:
            warnings.warn(f"CUDA graph capture failed, decoding eagerly: {exc}", stacklevel=2)
            self.graph = None
            self.compile_step = False  # the failure may have been the compile itself
        # Warm-up wrote garbage beyond `start`; it is masked out and overwritten before use.
        self.cache.length.copy_(start)

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        self.static_ids.copy_(ids.view(-1, 1))
        if self.graph is None:
            return self.forward()
        self.graph.replay()
        return self.static_logits


def _decode_forward(model: TransformerLM, ids: torch.Tensor, cache: KVCache) -> torch.Tensor:
    return model(ids, kv_cache=cache)[:, -1]


@functools.cache
def _compiled_decode_forward() -> Callable[[TransformerLM, torch.Tensor, KVCache], torch.Tensor]:
    # One compiled function for the process: guards are on shapes and dtypes, so later calls with
    # a new cache (or another model of the same shape) reuse the compiled code.
    return torch.compile(_decode_forward, fullgraph=True, dynamic=False)


@torch.no_grad()
def _logits_last(model: TransformerLM, seq: torch.Tensor) -> torch.Tensor:
    return model(seq[:, -model.context_length :])[:, -1]


@torch.no_grad()
def check_sampling(
    *, temperature: float, top_p: float, top_k: int, num_samples: int, max_new_tokens: int
) -> None:
    """The one check of sampling settings (the Python API and `bpelm generate` both come
    here): a ValueError naming the setting, before any work."""
    if not math.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 is greedy), got {temperature}")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1] (1 disables it), got {top_p}")
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0 (0 disables it), got {top_k}")
    if num_samples < 1:
        raise ValueError(f"num_samples must be at least 1, got {num_samples}")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")


def generate(
    model: TransformerLM,
    prompt_ids: list[int],
    *,
    max_new_tokens: int = 256,
    temperature: float = 0.8,
    top_p: float = 0.9,
    top_k: int = 0,
    num_samples: int = 1,
    eos_id: int | None = None,
    seed: int | None = None,
    use_cache: bool = True,
    compile_step: bool = False,
    vocab_limit: int | None = None,
) -> Iterator[torch.Tensor]:
    """Yield, per step, the next token id of each sample: a (num_samples,) int64 tensor.

    Samples that already emitted `eos_id` keep yielding it; generation stops once every sample
    has, or after max_new_tokens. A prompt longer than the context keeps its last tokens.
    `compile_step` torch.compiles the cached one-token step (a one-off compile of tens of
    seconds, worth it for long or repeated generation). `vocab_limit` (a tokenizer's size,
    when the model's vocabulary is padded past it) keeps ids at or above it from being drawn.
    Arguments are checked when this is called, not at the first step.
    """
    check_sampling(
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        num_samples=num_samples,
        max_new_tokens=max_new_tokens,
    )
    if not prompt_ids:
        raise ValueError("generate needs a non-empty prompt")
    bad = [t for t in prompt_ids if not 0 <= t < model.vocab_size]
    if bad:
        raise ValueError(f"prompt ids {bad[:5]} are outside the vocabulary [0, {model.vocab_size})")
    if vocab_limit is not None and not 0 < vocab_limit <= model.vocab_size:
        raise ValueError(
            f"vocab_limit {vocab_limit} must be in (0, {model.vocab_size}], the model's vocabulary"
        )
    return _generate(
        model,
        prompt_ids,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        num_samples=num_samples,
        eos_id=eos_id,
        seed=seed,
        use_cache=use_cache,
        compile_step=compile_step,
        vocab_limit=vocab_limit,
    )


def _generate(
    model: TransformerLM,
    prompt_ids: list[int],
    *,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    top_k: int,
    num_samples: int,
    eos_id: int | None,
    seed: int | None,
    use_cache: bool,
    compile_step: bool,
    vocab_limit: int | None,
) -> Iterator[torch.Tensor]:
    device = next(model.parameters()).device
    ctx = model.context_length
    was_training = model.training
    model.eval()
    generator = None
    if seed is not None:
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)
    prompt = torch.tensor(prompt_ids[-ctx:], dtype=torch.long, device=device)
    seq = prompt.unsqueeze(0).repeat(num_samples, 1)  # (B, T)
    done = torch.zeros(num_samples, dtype=torch.bool, device=device)
    step = None
    try:
        if use_cache:
            cache = model.make_kv_cache(num_samples)
            logits = model(seq, kv_cache=cache)[:, -1]
        else:
            logits = _logits_last(model, seq)
        for _ in range(max_new_tokens):
            if vocab_limit is not None and vocab_limit < logits.shape[-1]:
                logits = logits.clone()
                logits[:, vocab_limit:] = float("-inf")  # padding ids carry no token
            ids = sample_next(
                logits, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator
            )
            if eos_id is not None:
                ids = torch.where(done, torch.full_like(ids, eos_id), ids)
                done |= ids == eos_id
            yield ids
            if eos_id is not None and bool(done.all()):
                return
            seq = torch.cat([seq, ids.unsqueeze(1)], dim=1)
            if use_cache and seq.shape[1] <= ctx:
                if step is None:
                    step = _DecodeStep(model, cache, compile_step)
                logits = step(ids)
            else:
                logits = _logits_last(model, seq)
    finally:
        model.train(was_training)


# The token that ends a sample when the tokenizer has it.
END_OF_TEXT = "<|endoftext|>"


class IncrementalDecoder:
    """Turns a stream of token ids into text pieces. A character split across tokens
    (a partial UTF-8 sequence decodes to U+FFFD) is held back until it completes."""

    # A UTF-8 character has at most 4 bytes, so at most 4 byte-level tokens can be pending.
    MAX_PENDING = 4

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.pending: list[int] = []

    def push(self, token_id: int) -> str:
        self.pending.append(token_id)
        text = self.tokenizer.decode(self.pending)
        if text.endswith("\ufffd") and len(self.pending) < self.MAX_PENDING:
            return ""
        self.pending = []
        return text

    def flush(self) -> str:
        text = self.tokenizer.decode(self.pending) if self.pending else ""
        self.pending = []
        return text


def sample_text(
    model: Any,
    tokenizer: Any,
    prompt: str,
    *,
    max_new_tokens: int = 256,
    temperature: float = 0.8,
    top_p: float = 0.9,
    top_k: int = 0,
    num_samples: int = 1,
    seed: int | None = 0,
    out: IO[str] | None = None,
) -> list[str]:
    """Generate continuations of `prompt`, stopping at <|endoftext|>. With one sample the text
    is streamed to `out` as it is produced; with several, each is printed when all are done."""
    out = sys.stdout if out is None else out
    # A prompt is user text: one spelling "<|endoftext|>" is refused (ValueError), not
    # turned into the real end-of-text id.
    prompt_ids = tokenizer.encode(prompt)
    if not prompt_ids:
        raise ValueError("the prompt encodes to no tokens; give a non-empty prompt")
    try:
        eos: int | None = tokenizer.token_to_id(END_OF_TEXT)
    except KeyError:
        eos = None  # a vocabulary without <|endoftext|>: stop only at max_new_tokens
    vocab_size = tokenizer.vocab_size
    if vocab_size > model.vocab_size:
        raise ValueError(
            f"the tokenizer has {vocab_size:,} tokens but the model only {model.vocab_size:,}: "
            "they do not belong together (pass the tokenizer the model was trained with)"
        )
    steps = generate(  # checks every setting before anything is printed
        model,
        prompt_ids,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        num_samples=num_samples,
        eos_id=eos,
        seed=seed,
        vocab_limit=vocab_size,
    )
    ids: list[list[int]] = [[] for _ in range(num_samples)]
    done = [False] * num_samples
    stream = IncrementalDecoder(tokenizer) if num_samples == 1 else None
    if stream is not None:
        out.write(prompt)
        out.flush()
    with torch.no_grad():
        for step_ids in steps:
            for i, t in enumerate(step_ids.tolist()):
                if done[i]:
                    continue
                if eos is not None and t == eos:
                    done[i] = True
                    continue
                ids[i].append(t)
                if stream is not None:
                    out.write(stream.push(t))
                    out.flush()
            if all(done):
                break
    texts = [tokenizer.decode(s) for s in ids]
    if stream is not None:
        out.write(stream.flush() + "\n")
    else:
        for i, text in enumerate(texts):
            out.write(f"--- sample {i + 1}/{num_samples} ---\n{prompt}{text}\n")
    out.flush()
    return texts
