"""Run configuration: the model's shape and everything about training, from one TOML file.

A config file has two tables, `[model]` (fields of `ModelConfig`) and `[train]` (fields of
`TrainConfig`). Command-line overrides use `--set key=value`, where the key is `model.NAME`,
`train.NAME`, or a bare `NAME` that belongs to exactly one of the two.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from bpelm.model_config import ModelConfig
from bpelm.training.optim import SCHEDULES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on 3.9/3.10
    import tomli as tomllib


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message names the key or file."""


@dataclass
class TrainConfig:
    """Data, optimizer, schedule and run settings."""

    # --- data ---
    # Token array (.npy or raw .bin of uint16/uint32) to train on, memory-mapped.
    train_data: str = ""
    # Token array for validation loss.
    val_data: str = ""
    # Tokenizer directory (vocab.json, merges.txt), stored in checkpoints for `bpelm generate`.
    tokenizer: str = ""
    # --- optimization ---
    # Sequences per step.
    batch_size: int = 128
    # Micro-batches of batch_size accumulated into each update (bpelm.training.accumulation):
    # an update sees batch_size * grad_accum_steps sequences, in one micro-batch's memory.
    grad_accum_steps: int = 1
    # Optimizer steps; the cosine schedule decays over exactly this many.
    max_steps: int = 10_000
    # Peak learning rate, reached after warmup.
    max_lr: float = 2e-3
    # Final learning rate, at the end of the cosine decay.
    min_lr: float = 2e-4
    # Linear warmup steps (0: none).
    warmup_steps: int = 200
    # Decay after warmup: "cosine" to min_lr, or "linear" (a straight line to min_lr; with
    # min_lr = 0 and warmup_steps = 0, linear decay to zero without warmup).
    schedule: str = "cosine"
    # AdamW beta1: decay of the gradient's running mean.
    beta1: float = 0.9
    # AdamW beta2: decay of the squared gradient's running mean.
    beta2: float = 0.95
    # AdamW epsilon.
    eps: float = 1e-8
    # Decoupled weight decay, applied to matrices only (not norms or biases).
    weight_decay: float = 0.1
    # Clip the global gradient L2 norm to this; 0 disables clipping.
    grad_clip: float = 1.0
    # --- evaluation, logging, checkpoints ---
    # Evaluate validation loss every this many steps (and at the end).
    eval_every: int = 500
    # Validation batches per evaluation, drawn from a fixed seed so every eval sees the same.
    eval_batches: int = 20
    # Fetch losses from the device and write metrics rows every this many steps.
    log_every: int = 10
    # Save a checkpoint every this many steps (and at the end).
    checkpoint_every: int = 1000
    # Periodic checkpoints to keep besides best.pt.
    keep_last: int = 2
    # --- run ---
    # Seed for parameters, data sampling and validation batches.
    seed: int = 0
    # "auto" (CUDA when available), "cuda", "cuda:N", "cpu" or "mps".
    device: str = "auto"
    # Autocast dtype: "auto" (bfloat16 on CUDA, none on CPU), "bfloat16", "float16", "float32".
    dtype: str = "auto"
    # torch.compile the model: "auto" (on for CUDA only), true or false.
    # (get_type_hints evaluates field annotations: `X | Y` would not parse on Python 3.9.)
    compile: Union[bool, str] = "auto"  # noqa: UP007
    # Wall-clock budget in minutes, 0: off. It counts start-up, compilation, evaluations and
    # the final evaluation and checkpoint; the LR schedule follows it, warmup being the same
    # fraction of the budget as warmup_steps is of max_steps.
    max_minutes: float = 0.0
    # Weights & Biases project to log to (needs `wandb` installed); empty: off.
    wandb_project: str = ""
    # Also write TensorBoard event files (needs `tensorboard` installed).
    tensorboard: bool = False
    # --- divergence (bpelm.training.divergence) ---
    # Stop the run as diverged when a train loss exceeds this factor times the lowest train
    # loss so far; a NaN/inf loss or gradient norm always stops it. 0 turns the factor test off.
    # A diverged run writes no further checkpoint and records "diverged" in summary.json.
    divergence_factor: float = 4.0


SECTIONS: dict[str, type] = {"model": ModelConfig, "train": TrainConfig}
# TrainConfig fields that name files or folders.
PATH_KEYS = ("train_data", "val_data", "tokenizer")


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _type_name(tp: Any) -> str:
    args = typing.get_args(tp)
    if args:
        return " or ".join(_type_name(a) for a in args if a is not type(None))
    return getattr(tp, "__name__", str(tp))


def _check_value(key: str, tp: Any, value: Any) -> Any:
    """`value` as field type `tp`, or a ConfigError naming `key`."""
    if typing.get_origin(tp) is Union:
        for arg in typing.get_args(tp):
            if arg is type(None) and value is None:
                return None
            try:
                return _check_value(key, arg, value)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")


def _parse_text(key: str, tp: Any, text: str) -> Any:
    """A command-line string converted to field type `tp`."""
    candidates = typing.get_args(tp) if typing.get_origin(tp) is Union else (tp,)
    for arg in candidates:
        if arg is bool:
            lowered = text.strip().lower()
            if lowered in ("true", "1", "yes", "on"):
                return True
            if lowered in ("false", "0", "no", "off"):
                return False
        elif arg is int:
            try:
                return int(text.replace("_", ""))
            except ValueError:
                pass
        elif arg is float:
            try:
                return float(text.replace("_", ""))
            except ValueError:
                pass
        elif arg is str:
            return text
    raise ConfigError(f"{key}: expected {_type_name(tp)}, got {text!r}")


def _resolve_key(key: str) -> tuple[str, str]:
    """`model.x`, `train.x` or a bare `x` -> (section, field); unknown keys raise."""
    if "." in key:
        section, name = key.split(".", 1)
        if section not in SECTIONS:
            raise ConfigError(f"unknown config section {section!r} in {key!r} (model, train)")
        if name not in _field_types(SECTIONS[section]):
            raise ConfigError(f"unknown config key {key!r}")
        return section, name
    owners = [s for s, cls in SECTIONS.items() if key in _field_types(cls)]
    if not owners:
        raise ConfigError(f"unknown config key {key!r}")
    if len(owners) > 1:  # pragma: no cover - no field names are shared today
        raise ConfigError(
            f"config key {key!r} is ambiguous: write one of "
            + ", ".join(f"{s}.{key}" for s in owners)
        )
    return owners[0], key


def build_config(
    data: dict[str, Any], overrides: list[str] | None = None, *, source: str = "config"
) -> tuple[ModelConfig, TrainConfig]:
    """Configs from a parsed TOML mapping plus `key=value` overrides."""
    values: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for section, table in data.items():
        if section not in SECTIONS:
            raise ConfigError(f"{source}: unknown table [{section}] (expected [model], [train])")
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: {section} must be a table")
        types = _field_types(SECTIONS[section])
        for name, value in table.items():
            key = f"{section}.{name}"
            if name not in types:
                raise ConfigError(f"{source}: unknown config key {key!r}")
            values[section][name] = _check_value(f"{source}: {key}", types[name], value)
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value")
        key, text = item.split("=", 1)
        section, name = _resolve_key(key.strip())
        tp = _field_types(SECTIONS[section])[name]
        values[section][name] = _parse_text(f"--set {key.strip()}", tp, text.strip())
    model = ModelConfig(**values["model"])
    train = TrainConfig(**values["train"])
    validate(model, train)
    return model, train


# The configs that ship in the package (`bpelm configs` lists them): a name works wherever a
# config file does.
PRESETS_DIR = Path(__file__).resolve().parent.parent / "configs"


def presets() -> dict[str, Path]:
    """The shipped configs by name (the file name without .toml)."""
    return {p.stem: p for p in sorted(PRESETS_DIR.glob("*.toml"))}


def preset_summary(path: Path) -> str:
    """A shipped config's first sentence, from its opening comment: what it is for."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#") or not line.lstrip("#").strip():
            break
        lines.append(line.lstrip("#").strip())
    text = " ".join(lines)
    end = min((i for i in (text.find(": "), text.find(". ")) if i >= 0), default=len(text))
    return text[:end]


def resolve_config(path_or_name: str | Path) -> Path:
    """A config file given as a path, or by the name of a shipped one (`tinystories-17m`)."""
    path = Path(path_or_name)
    if path.exists():
        return path
    shipped = presets()
    if str(path_or_name) in shipped:
        return shipped[str(path_or_name)]
    raise ConfigError(
        f"{path_or_name}: no such config file, nor a shipped config (those are: "
        f"{', '.join(shipped)}; `bpelm configs` describes them)"
    )


def load_config(
    path: str | Path | None, overrides: list[str] | None = None
) -> tuple[ModelConfig, TrainConfig]:
    """Parse a TOML config file (or only defaults when `path` is None) and apply overrides."""
    data: dict[str, Any] = {}
    source = "config"
    if path is not None:
        path = Path(path)
        source = str(path)
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: invalid TOML: {e}") from None
    return build_config(data, overrides, source=source)


def validate(model: ModelConfig, train: TrainConfig) -> None:
    """Reject values that would only fail later, deep inside training."""
    positive = {
        "model.vocab_size": model.vocab_size,
        "model.context_length": model.context_length,
        "model.d_model": model.d_model,
        "model.num_layers": model.num_layers,
        "model.num_heads": model.num_heads,
        "model.d_ff": model.d_ff,
        "train.batch_size": train.batch_size,
        "train.max_steps": train.max_steps,
        "train.eval_every": train.eval_every,
        "train.eval_batches": train.eval_batches,
        "train.log_every": train.log_every,
        "train.checkpoint_every": train.checkpoint_every,
    }
    for key, value in positive.items():
        if value <= 0:
            raise ConfigError(f"{key} must be positive, got {value}")
    if model.d_model % model.num_heads:
        raise ConfigError(
            f"model.d_model ({model.d_model}) must be divisible by model.num_heads "
            f"({model.num_heads})"
        )
    for section, cfg in (("model", model), ("train", train)):
        for f in dataclasses.fields(cfg):
            value = getattr(cfg, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{section}.{f.name} must be a finite number, got {value}")
    if model.logit_softcap < 0:
        raise ConfigError(f"model.logit_softcap must be >= 0 (0: off), got {model.logit_softcap}")
    if train.schedule not in SCHEDULES:
        raise ConfigError(
            f"train.schedule: expected one of {sorted(SCHEDULES)}, got {train.schedule!r}"
        )
    if model.rope_theta <= 0:
        raise ConfigError(f"model.rope_theta must be positive, got {model.rope_theta}")
    if train.max_lr <= 0:
        raise ConfigError(f"train.max_lr must be positive, got {train.max_lr}")
    if train.eps <= 0:
        raise ConfigError(f"train.eps must be positive, got {train.eps}")
    for key in ("beta1", "beta2"):
        beta = getattr(train, key)
        if not 0 <= beta < 1:
            raise ConfigError(f"train.{key} must be in [0, 1), got {beta}")
    non_negative = {
        "train.min_lr": train.min_lr,
        "train.weight_decay": train.weight_decay,
        "train.grad_clip": train.grad_clip,
        "train.warmup_steps": train.warmup_steps,
        "train.keep_last": train.keep_last,
        "train.max_minutes": train.max_minutes,
    }
    for key, value in non_negative.items():
        if value < 0:
            raise ConfigError(f"{key} must be >= 0, got {value}")
    if train.min_lr > train.max_lr:
        raise ConfigError(f"train.min_lr ({train.min_lr}) exceeds train.max_lr ({train.max_lr})")
    if isinstance(train.compile, str) and train.compile != "auto":
        raise ConfigError(f'train.compile: expected true, false or "auto", got {train.compile!r}')


def with_absolute_paths(train: TrainConfig) -> TrainConfig:
    """`train` with its data and tokenizer paths absolute (empty ones stay empty)."""
    paths = {
        key: str(Path(getattr(train, key)).expanduser().resolve())
        for key in PATH_KEYS
        if getattr(train, key)
    }
    return dataclasses.replace(train, **paths)


def config_dict(model: ModelConfig, train: TrainConfig) -> dict[str, dict[str, Any]]:
    """Both configs as plain dicts (for config.json and checkpoints)."""
    return {"model": model.to_dict(), "train": dataclasses.asdict(train)}


def _field_docs(cls: type) -> dict[str, str]:
    """Each field's meaning: the comment lines written above it in the class body (the
    source stays the one place a field is documented)."""
    docs: dict[str, str] = {}
    pending: list[str] = []
    for line in inspect.getsource(cls).splitlines():
        text = line.strip()
        if text.startswith("#"):
            comment = text.lstrip("#").strip()
            if not comment.startswith("---") and not comment.startswith("("):
                pending.append(comment)
            continue
        name = text.split(":", 1)[0]
        if ":" in text and name.isidentifier() and not text.startswith(("def ", "class ")):
            docs[name] = " ".join(pending)
        pending = []
    return docs


def config_reference() -> str:
    """Every config key as a Markdown table (key, type, default, meaning), generated from
    the dataclasses: `bpelm train --help-config` prints it and the README holds a copy that
    a test keeps equal."""
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for section, cls in SECTIONS.items():
        docs = _field_docs(cls)
        types = _field_types(cls)
        for f in dataclasses.fields(cls):
            default = f.default
            shown = f'"{default}"' if isinstance(default, str) else repr(default)
            meaning = docs.get(f.name, "").replace("|", "\\|")
            rows.append(
                f"| `{section}.{f.name}` | {_type_name(types[f.name])} | `{shown}` | {meaning} |"
            )
    return "\n".join(rows) + "\n"
