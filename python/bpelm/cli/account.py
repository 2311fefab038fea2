"""`bpelm account`: parameters, FLOPs, memory and run time of a model shape, on paper."""

from __future__ import annotations

import argparse
import json

from bpelm.cli.common import CliError


def register(sub: argparse._SubParsersAction, fmt: type[argparse.HelpFormatter]) -> None:
    from bpelm.experiments.accounting import PRESETS

    a = sub.add_parser(
        "account",
        help="parameters, FLOPs, memory and training time of a model shape",
        description="Resource accounting for a model shape: parameters and forward matmul FLOPs "
        "(2*m*n*k) per component for one sequence, training FLOPs (forward + backward = 3 x "
        "forward), AdamW FLOPs, memory as a*batch + b, the largest batch that fits --memory, and "
        "days for --steps at --peak-tflops x --mfu. Norms, softmax, RoPE and the embedding "
        "lookup are not counted as FLOPs; attention is counted over the full T x T matrix.",
        formatter_class=fmt,
    )
    src = a.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", help="TOML config; its [model] table is the shape")
    src.add_argument("--preset", choices=sorted(PRESETS), help="a named shape")
    a.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set ffn=silu (repeatable)",
    )
    a.add_argument(
        "--batch",
        type=int,
        default=None,
        help="sequences per step (default: the config's train.batch_size; presets: gpt2-* "
        "1024, tinystories-17m 128)",
    )
    a.add_argument(
        "--context", type=int, default=None, help="tokens per sequence (default: context_length)"
    )
    a.add_argument(
        "--steps",
        type=int,
        default=None,
        help="steps for the time estimate (default: the config's train.max_steps; presets: "
        "gpt2-* 400,000, tinystories-17m 10,000)",
    )
    a.add_argument("--memory", default="80GiB", help="device memory for the largest batch")
    a.add_argument("--peak-tflops", type=float, default=989.0, help="peak TFLOP/s (H100 bf16)")
    a.add_argument("--mfu", type=float, default=0.5, help="model FLOPs utilization")
    a.add_argument(
        "--bytes-per-value",
        type=int,
        default=4,
        help="bytes per parameter, gradient, AdamW moment and activation (4 = float32)",
    )
    a.add_argument(
        "--adamw-flops-per-param",
        type=int,
        default=13,
        help="FLOPs per parameter per AdamW step (13: m 3, v 4, update 4, weight decay 2; "
        "some count 9, with fused multiply-adds)",
    )
    a.add_argument(
        "--ffn-intermediate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="count the FFN's d_ff-wide tensors in activation memory (default: counted)",
    )
    a.add_argument(
        "--units", choices=("GiB", "GB"), default="GiB", help="memory units (GiB = 2^30 bytes)"
    )
    a.add_argument("--json", action="store_true", help="print JSON instead of tables")
    a.add_argument(
        "--measure",
        action="store_true",
        help="also build the real TransformerLM on the meta device and check the parameter "
        "count and FLOPs against torch.utils.flop_counter.FlopCounterMode (exit 1 on mismatch)",
    )
    a.set_defaults(func=cmd_account)


def cmd_account(args: argparse.Namespace) -> int:
    from bpelm.experiments import accounting as acc
    from bpelm.training.config import build_config

    if args.config:
        from bpelm.experiments.sweep import load_spec

        # A study file's [sweep] table is allowed (and ignored: the base config is accounted).
        model_cfg, train_cfg = load_spec(args.config, common=args.set).configs([])
        name = args.config
    else:
        data = {"model": acc.PRESETS[args.preset], "train": acc.PRESET_TRAIN[args.preset]}
        model_cfg, train_cfg = build_config(data, args.set, source=f"preset {args.preset}")
        name = args.preset
    batch = train_cfg.batch_size if args.batch is None else args.batch
    steps = train_cfg.max_steps if args.steps is None else args.steps
    for flag, value in (("--batch", batch), ("--steps", steps)):
        if value <= 0:
            raise CliError(f"{flag} must be positive, got {value}")
    if args.bytes_per_value <= 0 or args.mfu <= 0 or args.peak_tflops <= 0:
        raise CliError("--bytes-per-value, --mfu and --peak-tflops must be positive")
    options = acc.AccountingOptions(
        bytes_per_value=args.bytes_per_value,
        adamw_flops_per_param=args.adamw_flops_per_param,
        ffn_intermediate=args.ffn_intermediate,
    )
    result = acc.account(model_cfg, args.context, options)
    memory = acc.parse_bytes(args.memory)
    peak = args.peak_tflops * 1e12
    days = result.days(steps, batch, peak, args.mfu)
    measured = acc.measure(model_cfg, result.context) if args.measure else None

    if args.json:
        out = result.to_dict(batch)
        out.update(
            {
                "source": name,
                "memory_limit_bytes": memory,
                "max_batch": result.max_batch(memory),
                "steps": steps,
                "peak_flops": peak,
                "mfu": args.mfu,
                "days": days,
            }
        )
        if measured is not None:
            out["measured"] = {
                "params": measured.params,
                "forward_flops": measured.forward_flops,
                "by_component": measured.by_component,
            }
        print(json.dumps(out, indent=2))
    else:
        print(_report(name, result, batch, steps, memory, peak, args.mfu, args.units))
    if measured is not None:
        ok = measured.params == result.params and acc.is_close(
            measured.forward_flops, result.forward_flops
        )
        if not args.json:
            print(_measure_report(result, measured, ok))
        return 0 if ok else 1
    return 0


def _report(
    name: str, r, batch: int, steps: int, memory: float, peak: float, mfu: float, units: str
) -> str:
    from bpelm.experiments.accounting import format_bytes

    c = r.config
    lines = [
        f"{name}: {c.num_layers} layers, d_model {c.d_model}, {c.num_heads} heads, d_ff {c.d_ff} "
        f"({c.ffn}), vocab {c.vocab_size:,}, norm {c.norm}, "
        f"{'tied' if c.tie_embeddings else 'untied'} embeddings; context {r.context:,}",
        "",
        f"{'component':<26}{'parameters':>16}{'forward FLOPs':>16}{'share':>8}",
    ]
    for comp in r.components:
        lines.append(
            f"{comp.name:<26}{comp.params:>16,}{comp.forward_flops:>16.4g}"
            f"{100 * r.share(comp):>7.1f}%"
        )
    lines += [
        f"{'total':<26}{r.params:>16,}{r.forward_flops:>16.4g}{100.0:>7.1f}%",
        f"(FLOPs: matmuls only, 2*m*n*k, for one sequence of {r.context:,} tokens)",
        "",
        f"training FLOPs: forward + backward = 3 x forward = {r.train_flops_per_sequence:.4g} "
        f"per sequence; {batch * r.train_flops_per_sequence:.4g} per step of {batch:,}",
        f"AdamW step: {r.options.adamw_flops_per_param} FLOPs/parameter "
        f"(--adamw-flops-per-param) = {r.adamw_flops:.4g} FLOPs",
        "",
        f"memory ({r.options.bytes_per_value} bytes/value; activations "
        f"{'count' if r.options.ffn_intermediate else 'leave out'} the FFN's d_ff-wide tensors):",
        f"  parameters          {format_bytes(r.param_bytes, units):>14}",
        f"  gradients           {format_bytes(r.grad_bytes, units):>14}",
        f"  AdamW state (m, v)  {format_bytes(r.adamw_bytes, units):>14}",
        f"  activations/seq     {format_bytes(r.activation_bytes_per_sequence, units):>14}",
        f"  total = a*batch + b with a = {r.activation_bytes_per_sequence:,} and "
        f"b = {r.fixed_bytes:,} bytes",
        f"  at batch {batch:,}: {format_bytes(r.memory_bytes(batch), units)}",
        f"largest batch in {format_bytes(memory, units)}: {r.max_batch(memory):,}",
        "",
        f"time: {steps:,} steps of {batch:,} sequences at {peak / 1e12:g} TFLOP/s x MFU "
        f"{mfu:g} = {r.days(steps, batch, peak, mfu):,.2f} days",
    ]
    return "\n".join(lines)


def _measure_report(r, m, ok: bool) -> str:
    from bpelm.experiments.accounting import formula_by_measured_component

    formula = formula_by_measured_component(r)
    lines = [
        "",
        "measured: TransformerLM on the meta device, torch.utils.flop_counter.FlopCounterMode",
        f"{'':<34}{'formula':>18}{'measured':>18}",
        f"{'parameters':<34}{r.params:>18,}{m.params:>18,}",
        f"{'forward FLOPs':<34}{r.forward_flops:>18.6g}{m.forward_flops:>18.6g}",
    ]
    for key in formula:
        lines.append(f"  {key:<32}{formula[key]:>18.6g}{m.by_component.get(key, 0.0):>18.6g}")
    lines.append("formula and model agree" if ok else "MISMATCH between formula and model")
    return "\n".join(lines)
