"""What every stage's configuration shares (pretraining's hacm.pretrain.config, evaluation's
hacm.evaluate.config): the top-level keys (seed, method preset, model), the data section, precisions and
the linear learning-rate scaling with its record.

Unknown keys are rejected with their dotted name, so a typo never silently falls back to a default.
The resolved configuration (every default filled in) is written next to each run's outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import get_type_hints

from hacm.config import ConfigError, require, require_mapping, section_from_dict
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
