"""Config files and --set overrides: parsing, type conversion, and errors that name the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from bpelm.training.config import ConfigError, ModelConfig, TrainConfig, build_config, load_config

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


@pytest.mark.parametrize("name", ["tinystories-17m.toml", "owt-small.toml", "tiny-cpu.toml"])
def test_shipped_configs_parse(name: str) -> None:
    model, train = load_config(CONFIGS / name)
    assert isinstance(model, ModelConfig) and isinstance(train, TrainConfig)
    assert model.d_model % model.num_heads == 0


def test_tinystories_config_is_the_specified_run() -> None:
    model, train = load_config(CONFIGS / "tinystories-17m.toml")
    assert (model.vocab_size, model.context_length, model.d_model) == (10_000, 256, 512)
    assert (model.num_layers, model.num_heads, model.d_ff) == (4, 16, 1344)
    assert train.max_steps * train.batch_size * model.context_length == 327_680_000
    assert (train.beta1, train.beta2, train.weight_decay, train.grad_clip) == (0.9, 0.95, 0.1, 1.0)


def test_toml_values_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[model]\nd_model = 64\nnum_heads = 4\n[train]\nmax_lr = 1\ncompile = false\n")
    model, train = load_config(
        path,
        ["model.num_layers=3", "max_steps=1_000", "train.max_lr=5e-4", "tie_embeddings=yes"],
    )
    assert model.d_model == 64 and model.num_layers == 3 and model.tie_embeddings is True
    assert train.max_steps == 1000 and train.max_lr == 5e-4 and train.compile is False
    # An int in TOML is accepted for a float field, and converted.
    assert isinstance(load_config(path)[1].max_lr, float)
    assert load_config(path, ["compile=auto"])[1].compile == "auto"
    assert load_config(path, ["compile=true"])[1].compile is True


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ("[model]\nd_modle = 64\n", "model.d_modle"),
        ("[train]\nmax_steps = 'many'\n", "train.max_steps"),
        ("[train]\nmax_steps = 1.5\n", "train.max_steps"),
        ("[train]\ngrad_clip = true\n", "train.grad_clip"),
        ("[optimizer]\nlr = 1\n", "[optimizer]"),
        ("[model]\nd_model = 100\nnum_heads = 16\n", "model.num_heads"),
        ("[train]\ncompile = 'sometimes'\n", "train.compile"),
    ],
)
def test_bad_config_files_name_the_key(tmp_path: Path, toml: str, needle: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=re.escape(needle)):
        load_config(path)


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("nonsense=1", "nonsense"),
        ("model.max_lr=1", "model.max_lr"),
        ("data.x=1", "data"),
        ("max_steps=ten", "max_steps"),
        ("tie_embeddings=maybe", "tie_embeddings"),
        ("max_steps", "key=value"),
    ],
)
def test_bad_overrides_name_the_key(override: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        build_config({}, [override])


def test_missing_and_invalid_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope.toml"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "broken.toml"
    bad.write_text("[model\n")
    with pytest.raises(ConfigError, match="broken.toml: invalid TOML"):
        load_config(bad)
