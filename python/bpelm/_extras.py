"""The optional halves of the package: `pip install bpelm` is the tokenizer (numpy and tqdm);
the model, training and plots need `bpelm[train]` (torch, matplotlib, safetensors). A missing
one is reported with the command that installs it, never as a bare traceback."""

from __future__ import annotations

import importlib

# Third-party modules and the extra that brings each.
EXTRA_OF = {
    "torch": "train",
    "matplotlib": "train",
    "safetensors": "train",
    "tomli": "train",
    "wandb": "wandb",
    "tensorboard": "tensorboard",
}


class MissingExtra(ModuleNotFoundError):
    """A module from one of bpelm's extras is not installed; the message says how to get it."""


def install_hint(module: str) -> str:
    """The pip command that installs `module` with the bpelm extra that brings it."""
    extra = EXTRA_OF.get(module.split(".")[0], "train")
    return f"pip install 'bpelm[{extra}]'"


def require(module: str, needed_by: str) -> None:
    """Import `module` or raise MissingExtra saying that `needed_by` needs it, and how to get
    it."""
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name is None or e.name.split(".")[0] != module.split(".")[0]:
            raise  # something else is missing inside it: not ours to explain
        raise MissingExtra(
            f"{needed_by} needs {module}, which is not installed: {install_hint(module)}",
            name=module,
        ) from None
