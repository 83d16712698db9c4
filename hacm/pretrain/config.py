"""Pretraining configuration: one YAML file, validated into dataclasses, with `--set key=value` overrides
(the sections every stage shares: hacm.train.stage_config)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hacm.config import adam_betas, apply_overrides, load_yaml, require, require_rates, to_plain_dict
from hacm.model.config import ModelConfig
from hacm.train.stage_config import PRECISIONS, DataConfig, learning_rates, scaled_to_batch, stage_config_from_dict


@dataclass(frozen=True)
class OptimConfig:
    epochs: int = 400
    warmup_epochs: int = 20
    lr: float = 1.5e-4  # at a global batch of lr_batch samples; scaled linearly with the global batch
    min_lr: float = 0.0  # likewise
    lr_batch: int = 256  # the global batch lr and min_lr are stated for (the release states them absolutely)
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    clip_grad: float | None = 1.0
    precision: str = "fp32"
    # torch.compile the encoder's and decoder's transformer stacks (HACMPretrainer.compile_transformers):
    # the same arithmetic, fused, after ~1 min of compiling. On a 2-core EPYC 1.08x in fp32 and 0.63x in bf16
    # (docs/performance.md, "Side by side with the authors' release"); meant for GPUs, where benchmarks/speed/gpu_check.py times it
    compile: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", adam_betas(self.betas, "optim.betas"))
        require(isinstance(self.compile, bool), "optim.compile", "must be true or false")
        require(isinstance(self.epochs, int) and self.epochs > 0, "optim.epochs", "must be a positive integer")
        require(isinstance(self.warmup_epochs, int) and 0 <= self.warmup_epochs <= self.epochs, "optim.warmup_epochs",
              "must lie in [0, epochs]")
        require_rates("optim", self.lr, self.min_lr)
        require(isinstance(self.lr_batch, int) and self.lr_batch > 0, "optim.lr_batch", "must be a positive integer")
        require(self.weight_decay >= 0, "optim.weight_decay", "must be non-negative")
        require(self.clip_grad is None or self.clip_grad > 0, "optim.clip_grad", "must be positive or null")
        require(self.precision in PRECISIONS, "optim.precision", f"must be one of {PRECISIONS}")

    def scaled_lr(self, batch_size: int) -> tuple[float, float]:
        """(lr, min_lr) for a global batch of batch_size samples: linear scaling from lr_batch."""
        return scaled_to_batch(self.lr, self.min_lr, batch=batch_size, lr_batch=self.lr_batch)


@dataclass(frozen=True)
class MonitorConfig:
    knn_every: int = 10  # epochs between kNN accuracy checks on the test split (0: never)
    knn_k: int = 20
    log_every: int = 10  # steps between metric lines

    def __post_init__(self) -> None:
        require(self.knn_every >= 0 and self.knn_k > 0 and self.log_every > 0, "monitor", "counts must be positive")


@dataclass(frozen=True)
class PretrainConfig:
    seed: int = 0
    method: str = "hacm"  # a preset of model fields: hacm, mamp, mae
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)

    def to_dict(self) -> dict:
        return to_plain_dict(self)

    def learning_rates(self) -> dict:
        """The values a reader compares with a paper's recipe (recorded in each run's run.yaml)."""
        return learning_rates(self.data.batch_size, *self.optim.scaled_lr(self.data.batch_size))

    @classmethod
    def from_dict(cls, data: dict) -> PretrainConfig:
        return stage_config_from_dict(cls, data)


def load_pretrain_config(path: Path | None, overrides: list[str] | None = None) -> PretrainConfig:
    data: dict[str, Any] = load_yaml(path) if path is not None else {}
    return PretrainConfig.from_dict(apply_overrides(data, overrides or []))
