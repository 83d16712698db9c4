"""The encoder file (`encoder.pt`) a pretraining run ends with and every evaluation starts from.

One home for its format: written by `hacm.pretrain`, read and checked (kind, model configuration,
weights) by `hacm.evaluate`. It holds the encoder's weights, its model configuration, the method, the
epoch, the whole pretraining configuration, the identity of the stores it was trained on and the git commit; it loads with `weights_only=True`.
`load_encoder` also reads the authors' published pretrained weights (hacm.release.weights), which carry
none of this: their configuration comes from their shapes and their method is "<method> (published weights)".
`read_pretrained_model` reads the whole pretrainer (encoder, decoder, mask token) from a pretraining run's
checkpoint, for the readers that need more than the encoder (the mask figures of hacm.visualize).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch

from hacm.config import ConfigError
from hacm.model.config import ModelConfig
from hacm.model.pretrainer import SkeletonEncoder
from hacm.files import file_sha256
from hacm.train.checkpoint import CheckpointError, atomic_save, git_commit, load_state

ENCODER = "encoder.pt"
ENCODER_KIND = "hacm-encoder"
MODEL_KEY = "model"  # a pretraining checkpoint's entry of the whole pretrainer's weights (encoder, decoder, mask token)


@dataclass
class LoadedEncoder:
    encoder: SkeletonEncoder
    config: ModelConfig
    path: str | None  # None: a randomly initialised encoder
    sha256: str | None
    method: str


def save_encoder(path: Path, encoder: SkeletonEncoder, *, method: str, epoch: int, pretrain_config: dict,
                 data: dict | None = None) -> None:
    atomic_save({"kind": ENCODER_KIND, "method": method, "model": encoder.config.to_dict(),
                 "state_dict": encoder.state_dict(), "epoch": epoch, "pretrain_config": pretrain_config,
                 "data": data, "git_commit": git_commit()}, path)


def read_encoder_file(path: Path) -> dict:
    """An encoder file's content, checked to be one (clear error otherwise)."""
    state = load_state(path)
    if state.get("kind") != ENCODER_KIND or "state_dict" not in state or "model" not in state:
        raise CheckpointError(f"{path} is not an encoder file written by hacm.pretrain")
    return state


def read_pretrained_model(path: Path) -> tuple[ModelConfig, dict]:
    """The model config and the whole pretrainer's weights of a pretraining run's checkpoint (the encoder
    file holds the encoder only); CheckpointError when the file is not one."""
    state = load_state(path)  # torch.load(weights_only=True): tensors and plain values only
    weights, config = state.get(MODEL_KEY), state.get("config")
    if not (isinstance(weights, dict) and isinstance(config, dict) and isinstance(config.get("model"), dict)):
        raise CheckpointError(f"{path}: not a pretraining checkpoint (expected a {MODEL_KEY!r} state_dict and a "
                              "'config' with a 'model' entry)")
    try:
        return ModelConfig.from_stored(config["model"]), weights
    except ConfigError as error:
        raise CheckpointError(f"{path}: its model config is invalid ({error})") from None


def load_encoder(path: Path, *, drop_path: float = 0.0, kind: str | None = None) -> LoadedEncoder:
    """The encoder an encoder file describes, with its weights (`drop_path` for fine-tuning); or the encoder
    of the authors' published weights, `kind` (release-hacm, mamp, mae) naming their model where the file
    does not."""
    from hacm.release.weights import is_published, published_encoder, read_checkpoint

    state = read_checkpoint(path)  # weights only (and argparse.Namespace, which the authors' files carry)
    if state.get("kind") != ENCODER_KIND and is_published(state):
        return published_encoder(state, Path(path), kind=kind, drop_path=drop_path)
    if kind is not None and state.get("kind") == ENCODER_KIND:
        raise CheckpointError(f"{path} is an encoder file written by hacm.pretrain; an encoder kind is given only "
                              "for the authors' published weights")
    if state.get("kind") != ENCODER_KIND or "state_dict" not in state or "model" not in state:
        raise CheckpointError(f"{path} is not an encoder file written by hacm.pretrain, nor the authors' published "
                              "weights (a state dict of their model, or a checkpoint with it under 'model')")
    try:
        config = replace(ModelConfig.from_stored(state["model"]), drop_path=drop_path)
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"{path}: its model configuration is invalid ({error})") from None
    encoder = SkeletonEncoder(config)
    try:
        encoder.load_state_dict(state["state_dict"])
    except RuntimeError as error:
        first = str(error).splitlines()[1:2] or [str(error)]
        raise CheckpointError(f"{path}: weights do not match the encoder they describe ({first[0].strip()})") from None
    return LoadedEncoder(encoder, config, str(path), file_sha256(path), str(state.get("method", "unknown")))


def random_encoder(config: ModelConfig, *, seed: int, method: str) -> LoadedEncoder:
    """A randomly initialised encoder (the "no pretraining" rows), seeded."""
    torch.manual_seed(seed)
    return LoadedEncoder(SkeletonEncoder(config), config, None, None, f"{method} (random init)")
