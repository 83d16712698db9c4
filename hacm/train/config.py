"""Run configuration: one YAML file, validated into dataclasses, with `--set key=value` overrides.

Unknown keys are rejected with their dotted name, so a typo never silently falls back to a default.
The resolved configuration (every default filled in) is written next to each run's outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

from hacm.config import (
    ConfigError,
    adam_betas,
    apply_overrides,
    load_yaml,
    require,
    require_mapping,
    require_rates,
    section_from_dict,
    to_plain_dict,
)
from hacm.methods import METHODS
from hacm.model.config import ModelConfig

PRECISIONS = ("fp32", "bf16", "fp16")
LOADERS = ("auto", "device", "workers")
INPUTS = ("coordinates", "velocity")  # hacm.data.augment.augment_batch's `input`


@dataclass(frozen=True)
class DataConfig:
    batch_size: int = 256  # global batch, split over data-parallel processes
    loader: str = "auto"  # auto: the whole split on the GPU when there is one, else the mapped store
    workers: int = 0
    rotation: float = 0.3
    # What the model reads: joint coordinates, or their frame-to-frame velocity taken on the augmented clip
    # (the release's `vel: True` for NTU-120 x-sub and PKU-MMD II). Pretraining and evaluation must agree:
    # an encoder pretrained on velocity is evaluated on velocity.
    input: str = "coordinates"

    def __post_init__(self) -> None:
        require(isinstance(self.batch_size, int) and self.batch_size > 0, "data.batch_size", "must be a positive integer")
        require(self.loader in LOADERS, "data.loader", f"must be one of {LOADERS}")
        require(isinstance(self.workers, int) and self.workers >= 0, "data.workers", "must be a non-negative integer")
        require(self.rotation >= 0, "data.rotation", "must be non-negative")
        require(self.input in INPUTS, "data.input", f"must be one of {INPUTS}")


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


def scaled_to_batch(lr: float, min_lr: float, *, batch: int, lr_batch: int) -> tuple[float, float]:
    """The linear scaling rule: (lr, min_lr) stated at a global batch of lr_batch, used at `batch`."""
    return lr * batch / lr_batch, min_lr * batch / lr_batch


def learning_rates(global_batch: int, lr: float, min_lr: float | None) -> dict:
    """Global batch, absolute lr (and min lr) and the lr per 256 samples, rounded for reading."""
    return {"global_batch": global_batch, "lr_absolute": float(f"{lr:.6g}"),
            "lr_per_256": float(f"{lr * 256 / global_batch:.6g}"),
            "min_lr_absolute": None if min_lr is None else float(f"{min_lr:.6g}")}


# A run.yaml written by the workflow records the learning rates its values resolve to under this key;
# they are derived, so the stages recompute them and do not read it.
RECORD_KEY = "learning_rates"


def top_level_fields(cls, data: dict | None) -> tuple[dict, str, int, ModelConfig]:
    """The parts every stage config shares: unknown top-level keys rejected by name, the method preset
    (its model fields under the document's own `model` keys), and the seed."""
    data = dict(data or {})
    data.pop(RECORD_KEY, None)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r}; known top-level keys: {', '.join(sorted(known))}")
    for key, value in data.items():  # `optim:` with nothing under it would silently mean the paper's defaults
        require(value is not None, key, "is empty (null): give its keys, or leave it out for the defaults")
    method = data.get("method", "hacm")
    if method not in METHODS:
        raise ConfigError(f"method: must be one of {', '.join(METHODS)} (got {method!r})")
    seed = data.get("seed", 0)
    require(isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0, "seed", "must be a non-negative integer")
    model = ModelConfig.from_dict({**METHODS[method].preset, **require_mapping(data.get("model"), "model")})
    return data, method, seed, model


def stage_config_from_dict(cls, data: dict | None):
    """A stage's config (PretrainConfig, EvalConfig) from a document: seed, method and model as
    top_level_fields reads them, and every other field a section checked into its dataclass."""
    data, method, seed, model = top_level_fields(cls, data)
    types = get_type_hints(cls)
    sections = {f.name: section_from_dict(types[f.name], data.get(f.name), f.name)
                for f in fields(cls) if f.name not in ("seed", "method", "model")}
    return cls(seed=seed, method=method, model=model, **sections)


def load_pretrain_config(path: Path | None, overrides: list[str] | None = None) -> PretrainConfig:
    data: dict[str, Any] = load_yaml(path) if path is not None else {}
    return PretrainConfig.from_dict(apply_overrides(data, overrides or []))
