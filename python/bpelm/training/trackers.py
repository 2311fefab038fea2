"""Optional experiment trackers (Weights & Biases, TensorBoard): never required, imported only
when a config asks for them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from bpelm._extras import install_hint
from bpelm.training.config import TrainConfig


class Trackers:
    """Weights & Biases and TensorBoard, each only when the config asks for it."""

    def __init__(self, cfg: TrainConfig, out_dir: Path, config: dict, log: Callable) -> None:
        self.wandb = None
        self.tb = None
        if cfg.wandb_project:
            try:
                import wandb
            except ImportError:
                log(
                    "warning: train.wandb_project is set but wandb is not installed "
                    f"({install_hint('wandb')}); skipping it"
                )
            else:
                self.wandb = wandb.init(project=cfg.wandb_project, dir=str(out_dir), config=config)
        if cfg.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log(
                    "warning: train.tensorboard is set but tensorboard is not installed "
                    f"({install_hint('tensorboard')}); skipping it"
                )
            else:
                self.tb = SummaryWriter(log_dir=str(out_dir / "tensorboard"))

    def log(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            values = {k: v for k, v in row.items() if k != "step" and v is not None}
            if self.wandb is not None:
                self.wandb.log(values, step=row["step"])
            if self.tb is not None:
                for k, v in values.items():
                    self.tb.add_scalar(k, v, row["step"])

    def close(self) -> None:
        if self.wandb is not None:
            self.wandb.finish()
        if self.tb is not None:
            self.tb.close()
