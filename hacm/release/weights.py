"""The authors' published pretrained weights as hacm encoders.

MAMP's and the release's main_pretrain.py save their models through util/misc.py `save_model`:
{'model': state_dict, 'optimizer': ..., 'epoch': int, 'scaler': dict, 'args': argparse.Namespace}.
They are read with torch.load(weights_only=True), which allows tensors and plain Python values and, here,
exactly one class more: argparse.Namespace (a bag of attributes, whose unpickling runs no code). Anything
else pickled is refused, never loaded. A bare state dict (no 'model' entry) is read too.

Only the encoder's keys are kept, through hacm.release.keymap; the decoder's are ignored. The encoder's
configuration comes from the shapes: D, coordinates and t_patch from joints_embed.proj.weight, the token
joints from pos_embed (18 limb joints: HA-CM; 25: MAE / MAMP), the time patches from temp_embed, the
depth from the blocks, the MLP ratio from blocks.0.mlp.fc1; the heads (no shape shows them) from the
file's args.model_args when it has them, else 8, the number in every published config. The kind is
read from the keys (the release's l1 / l2 and mask_token_t) or from args.model (model_mamp / model_mae);
where neither tells MAMP from MAE (the two have the same keys), the caller names it (--encoder-kind).
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from hacm.config import ConfigError
from hacm.data.kinect import NUM_JOINTS, TRUNK_JOINTS
from hacm.files import file_sha256
from hacm.model.config import preset
from hacm.model.pretrainer import SkeletonEncoder
from hacm.release.keymap import (
    CURVATURE_BUFFER,
    ENCODER_PREFIX,
    coverage_problems,
    detect_source,
    encoder_part,
    map_state,
)
from hacm.release.kinds import KIND_METHODS, KINDS, published_method
from hacm.train.checkpoint import CheckpointError, load_state
from hacm.train.encoder_file import LoadedEncoder

DEFAULT_HEADS = 8  # every published config of the release and MAMP (num_heads: 8)
_BLOCK = re.compile(r"^blocks\.(\d+)\.")
_DECODER_BLOCK = re.compile(r"^decoder_blocks\.(\d+)\.")
_MODULE_PREFIX = "module."  # a state dict saved from a DistributedDataParallel wrapper
_TOKEN_JOINTS = {"release-hacm": NUM_JOINTS - len(TRUNK_JOINTS), "mamp": NUM_JOINTS, "mae": NUM_JOINTS}


def read_checkpoint(path: Path) -> dict:
    """A checkpoint's content (weights only, plus argparse.Namespace); CheckpointError (one line) otherwise."""
    with torch.serialization.safe_globals([argparse.Namespace]):
        return load_state(path)


def _tensor_dict(value) -> bool:
    return isinstance(value, dict) and bool(value) and all(isinstance(v, torch.Tensor) for v in value.values())


def model_state(state: dict) -> dict[str, torch.Tensor] | None:
    """The model's state dict of a published checkpoint ('model' entry, or the file itself), None when the
    file holds none."""
    model = state.get("model") if _tensor_dict(state.get("model")) else state if _tensor_dict(state) else None
    if model is not None and all(key.startswith(_MODULE_PREFIX) for key in model):
        model = {key[len(_MODULE_PREFIX):]: value for key, value in model.items()}
    return model


def is_published(state: dict) -> bool:
    """Whether a checkpoint's content looks like the authors' (a model state dict with their patch embedding)."""
    model = model_state(state)
    return model is not None and detect_source(model) is not None


def saved_args(state: dict) -> dict:
    """The training arguments a checkpoint carries ('args', a Namespace or a dict), {} without them."""
    args = state.get("args")
    if isinstance(args, argparse.Namespace):
        return vars(args)
    return args if isinstance(args, dict) else {}


def published_kind(model: dict, args: dict, *, asked: str | None, path: Path) -> str:
    """The kind of a published state dict: what its keys or args say, checked against `asked` (the user's)."""
    source = detect_source(model)
    saved = str(args.get("model", ""))
    said = "mamp" if "model_mamp" in saved else "mae" if "model_mae" in saved else None
    found = "release-hacm" if source == "release-hacm" else said
    if asked is not None and asked not in KINDS:
        raise CheckpointError(f"unknown encoder kind {asked!r}; expected one of {', '.join(KINDS)}")
    if source == "release-hacm" and asked not in (None, "release-hacm"):
        raise CheckpointError(f"{path} holds the release's HA-CM keys (l1.weight, mask_token_t), not {asked}'s")
    if source != "release-hacm" and asked == "release-hacm":
        raise CheckpointError(f"{path} holds MAE / MAMP keys (no l1.weight, no mask_token_t), not the release's HA-CM")
    if asked is not None and said is not None and asked != said:
        raise CheckpointError(f"{path} was saved by {saved} (its args.model), but the encoder kind given is {asked}")
    kind = asked or found
    if kind is None:
        raise CheckpointError(f"{path}: MAE and MAMP weights have the same keys and its args do not say which; "
                              "give --encoder-kind mamp or --encoder-kind mae")
    return kind


def _count(keys, pattern: re.Pattern) -> int:
    indices = [int(match.group(1)) for key in keys if (match := pattern.match(key))]
    return max(indices) + 1 if indices else 0


def _shape(model: dict, key: str, path: Path) -> tuple[int, ...]:
    if key not in model:
        raise CheckpointError(f"{path}: its weights have no {key}, which gives the encoder's sizes")
    return tuple(model[key].shape)


@dataclass(frozen=True)
class PublishedSizes:
    """What a published state dict's shapes say about its encoder."""

    frames: int
    t_patch: int
    coords: int
    dim: int
    depth: int
    heads: int
    mlp_ratio: float
    token_joints: int
    decoder_dim: int | None
    decoder_depth: int


def published_sizes(model: dict, args: dict, path: Path) -> PublishedSizes:
    patch = _shape(model, "joints_embed.proj.weight", path)
    joints, patches = _shape(model, "pos_embed", path), _shape(model, "temp_embed", path)
    if len(patch) != 4 or patch[3] != 1 or len(joints) != 4 or len(patches) != 4:
        raise CheckpointError(f"{path}: joints_embed.proj.weight {patch}, pos_embed {joints}, temp_embed {patches} "
                              "are not a skeleton patch embedding of one joint per token (patch_size 1)")
    dim, depth = patch[0], _count(model, _BLOCK)
    if depth == 0:
        raise CheckpointError(f"{path}: its weights have no encoder blocks (blocks.0.*)")
    hidden = _shape(model, "blocks.0.mlp.fc1.weight", path)[0]
    model_args = args.get("model_args") if isinstance(args.get("model_args"), dict) else {}
    heads = model_args.get("num_heads", DEFAULT_HEADS)
    decoder = tuple(model["decoder_embed.weight"].shape) if "decoder_embed.weight" in model else None
    return PublishedSizes(frames=patches[1] * patch[2], t_patch=patch[2], coords=patch[1], dim=dim, depth=depth,
                          heads=int(heads), mlp_ratio=hidden / dim, token_joints=joints[2],
                          decoder_dim=decoder[0] if decoder else None, decoder_depth=_count(model, _DECODER_BLOCK))


def published_encoder(state: dict, path: Path, *, kind: str | None = None, drop_path: float = 0.0) -> LoadedEncoder:
    """The encoder of a published checkpoint's content `state` (read from `path`): config from its shapes,
    weights through the key map; CheckpointError (one line, naming the first offending keys) when they do
    not fit."""
    model = model_state(state)
    if model is None or detect_source(model) is None:
        raise CheckpointError(f"{path} holds no state dict of the authors' models (no joints_embed.proj.weight)")
    args = saved_args(state)
    kind = published_kind(model, args, asked=kind, path=path)
    sizes = published_sizes(model, args, path)
    if sizes.token_joints != _TOKEN_JOINTS[kind]:
        raise CheckpointError(f"{path}: pos_embed has {sizes.token_joints} joint tokens; a {kind} encoder of "
                              f"25-joint skeletons has {_TOKEN_JOINTS[kind]}")
    decoder = {} if sizes.decoder_dim is None else {"decoder_dim": sizes.decoder_dim}
    try:
        config = preset(KIND_METHODS[kind], frames=sizes.frames, t_patch=sizes.t_patch, coords=sizes.coords,
                        dim=sizes.dim, depth=sizes.depth, heads=sizes.heads, mlp_ratio=sizes.mlp_ratio,
                        decoder_heads=sizes.heads, decoder_depth=max(1, sizes.decoder_depth), drop_path=drop_path,
                        **decoder)
    except (ConfigError, ValueError, TypeError) as error:
        raise CheckpointError(f"{path}: its shapes give no valid hacm {kind} encoder ({error})") from None
    encoder = SkeletonEncoder(config)
    mapped, keys = map_state(model, kind)
    if keys.unknown:
        raise CheckpointError(f"{path}: keys the {kind} model does not have: {', '.join(keys.unknown[:3])}"
                              + (" ..." if len(keys.unknown) > 3 else ""))
    weights = encoder_part(mapped)
    own = encoder.state_dict()
    buffer = CURVATURE_BUFFER[len(ENCODER_PREFIX):]
    problems = coverage_problems({k: tuple(v.shape) for k, v in weights.items()},
                                 {k: tuple(v.shape) for k, v in own.items()}, skipped=[buffer], source=kind,
                                 prefix=ENCODER_PREFIX)
    if problems:
        raise CheckpointError(f"{path}: its weights do not fit a {kind} encoder: {'; '.join(problems)}")
    encoder.load_state_dict({**{k: v for k, v in own.items() if k == buffer}, **weights}, strict=True)
    return LoadedEncoder(encoder, config, str(path), file_sha256(path), published_method(kind))
