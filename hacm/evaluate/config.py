"""Evaluation configuration: one YAML, validated, with `--set` overrides (as pretraining)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hacm.config import adam_betas, apply_overrides, load_yaml, require, require_rates, to_plain_dict
from hacm.model.config import ModelConfig
from hacm.train.stage_config import PRECISIONS, DataConfig, scaled_to_batch, stage_config_from_dict


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def require_batch_keys(section: str, batch_size: int, lr_batch: int, *, loop: str) -> None:
    require(_positive_int(batch_size), f"{section}.batch_size",
            f"must be set to the global batch of {loop}, a positive integer (data.batch_size is evaluation's "
            "inference batch, not a fallback)", got=batch_size)
    require(_positive_int(lr_batch), f"{section}.lr_batch", "must be a positive integer")


# One batch key per loop: data.batch_size is evaluation's inference batch (feature extraction, test
# scoring), linear.batch_size the linear probe's training batch, finetune.batch_size fine-tuning's; none
# falls back to another. The defaults are the release's global batches (config/paper.yaml: linprobe.yaml
# 128 per GPU x 2 GPUs; finetune.yaml 24 per GPU x 2 GPUs). `lr` (and `min_lr`) are stated at a global
# batch of `lr_batch` samples and scaled linearly to the batch that runs, so a recipe can be copied as
# published: the release's linear probe is lr 0.1 at batch 256, its fine-tuning lr 3e-4 (min 1e-5) at 48.


@dataclass(frozen=True)
class LinearConfig:
    epochs: int = 100
    lr: float = 0.1  # at lr_batch samples, scaled linearly to the batch
    momentum: float = 0.9
    weight_decay: float = 0.0
    augment: bool = False  # False: features extracted once and cached (test-time crop, no rotation)
    batch_size: int = 256  # global batch of the classifier's training (the release's 128 per GPU x 2 GPUs)
    lr_batch: int = 256

    def __post_init__(self) -> None:
        require(isinstance(self.epochs, int) and self.epochs > 0, "linear.epochs", "must be a positive integer")
        require_rates("linear", self.lr, 0.0)  # its cosine ends at 0
        require(0 <= self.momentum < 1, "linear.momentum", "must lie in [0, 1)")
        require(self.weight_decay >= 0, "linear.weight_decay", "must be non-negative")
        require_batch_keys("linear", self.batch_size, self.lr_batch, loop="the linear probe's training")


@dataclass(frozen=True)
class FinetuneConfig:
    epochs: int = 100
    warmup_epochs: int = 5
    lr: float = 5e-4  # at lr_batch samples, scaled linearly to the batch (as min_lr)
    min_lr: float = 1e-6
    weight_decay: float = 0.05
    layer_decay: float = 0.8
    drop_path: float = 0.3
    dropout: float = 0.3
    label_smoothing: float = 0.1
    hidden: int = 2048
    betas: tuple[float, float] = (0.9, 0.999)
    clip_grad: float | None = None
    precision: str = "fp32"
    batch_size: int = 48  # global batch of fine-tuning (the release's 24 per GPU x 2 GPUs)
    lr_batch: int = 256

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", adam_betas(self.betas, "finetune.betas"))
        require(isinstance(self.epochs, int) and self.epochs > 0, "finetune.epochs", "must be a positive integer")
        require(isinstance(self.warmup_epochs, int) and 0 <= self.warmup_epochs <= self.epochs,
                "finetune.warmup_epochs", "must be an integer in [0, epochs]")
        require_rates("finetune", self.lr, self.min_lr)
        require(self.weight_decay >= 0, "finetune.weight_decay", "must be non-negative")
        require(0 < self.layer_decay <= 1, "finetune.layer_decay", "must lie in (0, 1]")
        require(0 <= self.drop_path < 1 and 0 <= self.dropout < 1, "finetune.drop_path", "rates must lie in [0, 1)")
        require(0 <= self.label_smoothing < 1, "finetune.label_smoothing", "must lie in [0, 1)")
        require(self.precision in PRECISIONS, "finetune.precision", f"must be one of {PRECISIONS}")
        require_batch_keys("finetune", self.batch_size, self.lr_batch, loop="fine-tuning")


def protocol_rates(settings: LinearConfig | FinetuneConfig, *, samples: int | None = None) -> tuple[int, float, float]:
    """(global batch, lr, min_lr) a protocol trains with: its batch_size, at most `samples` when given, and
    lr / min_lr scaled to it from settings.lr_batch. The linear probe's cosine ends at 0."""
    batch = settings.batch_size
    if samples is not None:
        batch = min(batch, samples)
    lr, min_lr = scaled_to_batch(settings.lr, getattr(settings, "min_lr", 0.0), batch=batch,
                                 lr_batch=settings.lr_batch)
    return batch, lr, min_lr


@dataclass(frozen=True)
class SemiConfig:
    fraction: float = 0.01  # share of each class's training samples (at least one per class)
    draw: int = 0  # which draw: the subset's seed is derived from (seed, fraction, draw)

    def __post_init__(self) -> None:
        require(0 < self.fraction <= 1, "semi.fraction", "must lie in (0, 1]")
        require(isinstance(self.draw, int) and self.draw >= 0, "semi.draw", "must be a non-negative integer")


@dataclass(frozen=True)
class EvalMonitorConfig:
    test_every: int = 0  # epochs between test-split evaluations during training (0: only at the end)
    log_every: int = 20

    def __post_init__(self) -> None:
        require(self.test_every >= 0 and self.log_every > 0, "monitor", "counts must be non-negative / positive")


@dataclass(frozen=True)
class EvalConfig:
    seed: int = 0
    method: str = "hacm"  # architecture preset for --encoder none
    model: ModelConfig = field(default_factory=ModelConfig)  # architecture for --encoder none
    # data.batch_size: the inference batch (feature extraction, test scoring); training batches are the protocols'.
    data: DataConfig = field(default_factory=lambda: DataConfig(batch_size=256))
    linear: LinearConfig = field(default_factory=LinearConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    semi: SemiConfig = field(default_factory=SemiConfig)
    monitor: EvalMonitorConfig = field(default_factory=EvalMonitorConfig)

    def to_dict(self) -> dict:
        return to_plain_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> EvalConfig:
        return stage_config_from_dict(cls, data)


def load_eval_config(path, overrides: list[str] | None = None) -> EvalConfig:
    data = load_yaml(path) if path is not None else {}
    return EvalConfig.from_dict(apply_overrides(data, overrides or []))
