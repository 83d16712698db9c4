"""A foreign model and hacm's with the same weights: sizes, perturbed weights, the copy through the key map,
and the input batch the verifier feeds both.

Fresh models have zero biases and unit LayerNorms, so a bias or a LayerNorm mapped to the wrong key would
change nothing; the foreign model's biases and LayerNorms are perturbed before the copy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from hacm.data.kinect import NUM_JOINTS
from hacm.data.synthetic import action_dofs, skeleton_from_dofs
from hacm.model.config import ModelConfig, preset
from hacm.model.pretrainer import HACMPretrainer
from hacm.release.checkout import MAMP_MODEL_ARGS, RELEASE_MODEL_ARGS
from hacm.release.keymap import coverage_problems, hacm_only_keys, map_state

SIZES = ("small", "paper")
# The release hard-codes D 256 (l1 / l2), 18 * 12 tokens per group and T // 3: only the depths can shrink.
_RELEASE_SMALL = dict(depth=2, decoder_depth=1)
_MAMP_SMALL = dict(dim_feat=64, decoder_dim_feat=64, depth=2, decoder_depth=1, num_frames=40)
PERTURBATION = 0.1  # std of the noise added to every bias and LayerNorm weight
SAMPLES = 4  # input samples, two bodies each (the first sample's second body absent)


def release_args(size: str) -> dict:
    """The release's Transformer arguments at `size`."""
    return {**RELEASE_MODEL_ARGS, **(_RELEASE_SMALL if size == "small" else {})}


def mamp_args(size: str) -> dict:
    """MAMP's / MAE's Transformer arguments at `size`."""
    return {**MAMP_MODEL_ARGS, **(_MAMP_SMALL if size == "small" else {})}


def hacm_config(model_args: dict, method: str, **overrides) -> ModelConfig:
    """hacm's model of the foreign `model_args`, as the `method` preset (hacm, mamp, mae)."""
    return preset(method, frames=model_args["num_frames"], t_patch=model_args["t_patch_size"],
                  dim=model_args["dim_feat"], depth=model_args["depth"], heads=model_args["num_heads"],
                  mlp_ratio=float(model_args["mlp_ratio"]), decoder_dim=model_args["decoder_dim_feat"],
                  decoder_depth=model_args["decoder_depth"], decoder_heads=model_args["num_heads"], **overrides)


def perturb_biases_and_norms(model: nn.Module, *, seed: int, scale: float = PERTURBATION) -> None:
    """Add N(0, scale²) to every bias and every LayerNorm weight of `model`, in place."""
    generator = torch.Generator().manual_seed(seed)
    norms = {id(module.weight) for module in model.modules() if isinstance(module, nn.LayerNorm)}
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("bias") or id(parameter) in norms:
                parameter.add_(torch.randn(parameter.shape, generator=generator) * scale)


@dataclass
class WeightCopy:
    """How the foreign state dict went into hacm's model."""

    renamed: int  # foreign keys copied
    dropped: tuple[str, ...]  # foreign keys its forward never reads
    problems: list[str]  # unknown keys, missing / unexpected keys, shape mismatches ([] when it fits)
    max_difference: float  # max |hacm tensor - foreign tensor| after the copy (0.0: copied exactly)


def copy_weights(foreign: nn.Module, model: HACMPretrainer, source: str) -> WeightCopy:
    """Load the foreign model's state into hacm's `model` through the key map (strictly); hacm-only keys keep
    hacm's values. Nothing is loaded when the keys do not fit."""
    state = foreign.state_dict()
    mapped, keys = map_state(state, source)
    own = model.state_dict()
    skipped = hacm_only_keys(source, hyperbolic=model.config.hyperbolic)
    problems = [f"unknown {source} key {key}" for key in keys.unknown[:3]]
    problems += coverage_problems({k: tuple(v.shape) for k, v in mapped.items()},
                                  {k: tuple(v.shape) for k, v in own.items()}, skipped=skipped, source=source)
    if problems:
        return WeightCopy(len(keys.renamed), keys.dropped, problems, float("inf"))
    model.load_state_dict({**{key: own[key] for key in skipped if key in own}, **mapped}, strict=True)
    loaded = model.state_dict()
    difference = max((loaded[target] - state[key]).abs().max().item() for key, target in keys.renamed.items())
    return WeightCopy(len(keys.renamed), keys.dropped, [], difference)


def synthetic_batch(frames: int, *, samples: int = SAMPLES, seed: int = 0) -> torch.Tensor:
    """(N, 3, T, 25, 2) float32 skeletons: hacm's synthetic kinematic figure performing actions 0.. N-1 (a
    second person, shifted aside, performing another action; absent, all zeros, in the first sample), with
    5 mm joint noise."""
    rng = np.random.default_rng(seed)
    time = np.linspace(0.0, 1.0, frames)
    batch = np.zeros((samples, 2, frames, NUM_JOINTS, 3))
    for sample in range(samples):
        for body in range(1 if sample == 0 else 2):
            dofs = action_dofs((sample + 5 * body) % 15, time, rng)[0]
            joints = skeleton_from_dofs(dofs, scale=1.0 - 0.05 * body) + np.array([0.8 * body, 0.0, 0.0])
            batch[sample, body] = joints + rng.normal(0.0, 0.005, joints.shape)
    return torch.from_numpy(batch).float().permute(0, 4, 2, 3, 1).contiguous()


def hacm_pair(foreign: nn.Module, config: ModelConfig, source: str) -> tuple[HACMPretrainer, WeightCopy]:
    """hacm's model of `config` holding the foreign model's weights (eval mode)."""
    model = HACMPretrainer(config)
    copy = copy_weights(foreign, model, source)
    return model.eval(), copy
