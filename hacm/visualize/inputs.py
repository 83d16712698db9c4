"""The inputs of the mask figures and the masking diagnostic: a sample, the model config and its weights.

A sample is a raw NTU `.skeleton` file or one sequence of a converted store; the weights are a pretraining
run's checkpoint (its whole pretrainer: hacm.train.encoder_file.read_pretrained_model) or a fresh model's.
Every bad input is a VisualizeError whose message is the whole error line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml

from hacm.cli import one_line
from hacm.config import ConfigError
from hacm.data.augment import augment_batch
from hacm.data.ntu import load_sample
from hacm.data.storage import SkeletonStore, StoreError
from hacm.model.config import ModelConfig
from hacm.model.pretrainer import HACMPretrainer
from hacm.train.checkpoint import CheckpointError
from hacm.train.encoder_file import read_pretrained_model

# Fields that fix the weights' shapes or meaning: a checkpoint is only usable where they agree.
ARCHITECTURE_FIELDS = ("frames", "t_patch", "num_joints", "trunk_joints", "coords", "token_joints", "dim", "depth",
                       "heads", "mlp_ratio", "decoder_dim", "decoder_depth", "decoder_heads", "hyperbolic",
                       "curvature")


class VisualizeError(ValueError):
    """A bad input to a figure command; its message is the whole error line."""


@dataclass(frozen=True)
class Sample:
    name: str
    frames: np.ndarray  # (length, 2, 25, 3) float32
    valid_length: int  # frames with any non-zero value; crops stay within them, as in the loader


def read_sample(spec: str) -> Sample:
    """A raw NTU `.skeleton` file, or `STORE_DIR:INDEX` of a converted store."""
    path = Path(spec)
    if path.is_file():
        return _read_raw_sample(path)
    store_dir, colon, index_text = spec.rpartition(":")
    if not colon:
        if path.is_dir():
            raise VisualizeError(f"--sample {spec}: is a folder; give STORE_DIR:INDEX for a sample of a store")
        raise VisualizeError(f"--sample {spec}: no such file (expected a .skeleton file or STORE_DIR:INDEX)")
    try:
        index = int(index_text)
    except ValueError:
        raise VisualizeError(f"--sample {spec}: {index_text!r} is not a sample index (expected STORE_DIR:INDEX)") \
            from None
    return _read_store_sample(Path(store_dir), index, spec=spec)


def _read_raw_sample(path: Path) -> Sample:
    try:
        frames = load_sample(path)
    except (OSError, ValueError) as error:  # SkeletonFormatError and EmptySequenceError are ValueErrors
        raise VisualizeError(f"--sample {path}: {error}") from None
    valid = int(frames.reshape(len(frames), -1).any(axis=1).sum())
    return Sample(name=path.name.removesuffix(".skeleton"), frames=frames, valid_length=valid)


def _read_store_sample(directory: Path, index: int, *, spec: str) -> Sample:
    try:
        store = SkeletonStore(directory)
    except StoreError as error:
        raise VisualizeError(f"--sample {spec}: {error}") from None
    if not 0 <= index < len(store):
        raise VisualizeError(f"--sample {spec}: index {index} out of range (the store holds 0..{len(store) - 1})")
    valid = int(store.valid_lengths[index])
    if valid == 0:
        raise VisualizeError(f"--sample {spec}: sample {store.names[index]} has no non-zero frame")
    name = f"{store.names[index]} [{directory.parent.name}/{directory.name} #{index}]"
    return Sample(name=name, frames=np.asarray(store.sequence(index)), valid_length=valid)


def resize_to_frames(sample: Sample, *, frames: int) -> torch.Tensor:
    """The test-time centre crop resized to `frames`: (1, C=3, T, V=25, M=2) float32."""
    return augment_batch(sample.frames, torch.zeros(1, dtype=torch.int64), torch.tensor([sample.valid_length]),
                         None, frames=frames, train=False)


def read_model_overrides(path: Path) -> dict:
    """The `model:` mapping of a YAML config (other top-level keys are not ours and are ignored)."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise VisualizeError(f"--config {path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise VisualizeError(f"--config {path}: not valid YAML ({one_line(error, limit=200)})") from None
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise VisualizeError(f"--config {path}: expected a mapping with a `model:` mapping of ModelConfig fields")
    return dict(data["model"])


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    state: dict  # HACMPretrainer state_dict
    config: ModelConfig


def read_checkpoint(path: Path) -> Checkpoint:
    """A pretraining run's checkpoint.pt, its weights checked against its own model config."""
    try:
        model_config, weights = read_pretrained_model(path)
    except CheckpointError as error:
        raise VisualizeError(f"--checkpoint: {error}") from None
    with torch.random.fork_rng(devices=[]):
        expected = HACMPretrainer(model_config).state_dict()
    mismatch = state_dict_mismatch(expected, weights)
    if mismatch is not None:
        raise VisualizeError(f"--checkpoint {path}: its weights do not match its own model config: {mismatch}")
    return Checkpoint(path=path, state=weights, config=model_config)


def resolve_model_config(*, checkpoint: Checkpoint | None, overrides: dict) -> ModelConfig:
    """Defaults < the checkpoint's model config < `overrides` (YAML, then command line), validated."""
    base = checkpoint.config.to_dict() if checkpoint is not None else {}
    try:
        config = ModelConfig.from_dict({**base, **overrides})
    except (ConfigError, TypeError) as error:
        raise VisualizeError(f"model config: {error}") from None
    if config.token_joints != "limbs":
        raise VisualizeError("model.token_joints must be 'limbs': the figure compares criteria on the 18 limb tokens "
                             "(MAE / MAMP checkpoints use all 25 joints)")
    if checkpoint is not None:
        for key in ARCHITECTURE_FIELDS:
            pretrained, requested = getattr(checkpoint.config, key), getattr(config, key)
            if pretrained != requested:
                raise VisualizeError(f"--checkpoint {checkpoint.path}: pretrained with model.{key}={pretrained!r}, "
                                     f"but the requested config has {requested!r}")
    return config


def initial_state(config: ModelConfig, *, seed: int) -> dict:
    """The weights of a freshly initialised model; the global RNG is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return HACMPretrainer(config).state_dict()


def state_dict_mismatch(expected: dict, given: dict) -> str | None:
    """The first difference in keys or shapes between a model's state_dict and given weights, or None."""
    missing, unexpected = sorted(set(expected) - set(given)), sorted(set(given) - set(expected))
    if missing:
        return f"{missing[0]} is missing" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
    if unexpected:
        return f"{unexpected[0]} is unexpected" + (f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else "")
    for key, tensor in expected.items():
        if not isinstance(given[key], torch.Tensor) or given[key].shape != tensor.shape:
            shape = tuple(given[key].shape) if isinstance(given[key], torch.Tensor) else type(given[key]).__name__
            return f"{key} is {shape} in the checkpoint, {tuple(tensor.shape)} in the model"
    return None
