"""Masking: group counts, coverage, token identity through mask -> encoder -> decoder -> target, seeds."""

from __future__ import annotations

import pytest
import torch

from hacm.config import ConfigError
from hacm.model.config import ModelConfig, preset
from hacm.model.masking import motion_scores, select_visible
from hacm.model.pretrainer import HACMPretrainer, gather_tokens, patchify, restore_tokens, to_sequences

SMALL = dict(dim=32, depth=1, heads=4, decoder_dim=32, decoder_depth=1, decoder_heads=4)


def identity_input(config: ModelConfig, batch: int = 2) -> torch.Tensor:
    """x (N, 3, T, 25, M) whose every token's values are its (patch, token joint) index: c0 = patch, c1 = joint."""
    x = torch.zeros(batch, 3, config.frames, config.num_joints, config.num_bodies)
    frames = torch.arange(config.frames)
    for position, joint in enumerate(config.token_joint_ids):
        x[:, 0, :, joint] = (frames // config.t_patch).float()[None, :, None]
        x[:, 1, :, joint] = position
    x[:, 2] = torch.rand(batch, config.frames, config.num_joints, config.num_bodies)  # some variety for the scores
    return x


def decode_identity(values: torch.Tensor, config: ModelConfig) -> torch.Tensor:
    """(..., t_patch * 3) token values of an identity input -> natural index patch * J + joint."""
    patch, joint = values[..., 0], values[..., 1]
    return (patch * config.joints_per_patch + joint).round().long()


CONFIGS = {
    "hacm": ModelConfig(**SMALL),
    "hacm_t120": ModelConfig(frames=120, t_patch=4, **SMALL),
    "euclidean": ModelConfig(hyperbolic=False, **SMALL),
    "no_temporal": ModelConfig(temporal_criterion="random", **SMALL),
    "no_spatial": ModelConfig(spatial_criterion="random", **SMALL),
    "single": ModelConfig(masking="single", contrast_weight=0.0, **SMALL),
    "mamp": preset("mamp", **SMALL),
    "mae": preset("mae", **SMALL),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_exact_visible_counts_and_full_coverage(name):
    config = CONFIGS[name]
    model = HACMPretrainer(config)
    x = identity_input(config)
    sequences = to_sequences(x)
    plan = model.plan_masks(sequences, model.encoder.embed(sequences), generator=torch.Generator().manual_seed(0))
    count = sequences.shape[0]
    if config.masking == "cross":
        temporal_tokens = ((config.patches + 1) // 2) * config.joints_per_patch
        spatial_tokens = (config.patches // 2) * config.joints_per_patch
        k_t, k_s = config.visible_per_group(temporal_tokens), config.visible_per_group(spatial_tokens)
        assert plan.temporal_count == k_t and plan.visible.shape == (count, k_t + k_s)
        patches = plan.visible // config.joints_per_patch
        assert (patches[:, :k_t] % 2 == 0).all() and (patches[:, k_t:] % 2 == 1).all()
    else:
        assert plan.visible.shape == (count, config.visible_per_group(config.tokens))
    for row in range(count):
        visible = set(plan.visible[row].tolist())
        masked = set(torch.nonzero(plan.masked[row]).squeeze(1).tolist())
        assert len(visible) == plan.visible.shape[1], "no token chosen twice"
        assert visible.isdisjoint(masked) and visible | masked == set(range(config.tokens))


@pytest.mark.parametrize("name", ["hacm", "hacm_t120", "mamp"])
def test_token_identity_through_mask_encoder_decoder_and_target(name):
    config = CONFIGS[name]
    coordinates = ModelConfig(**{**config.to_dict(), "target": "coordinates", "hyperbolic": False,
                                 "contrast_weight": 0.0 if config.masking != "cross" else config.contrast_weight})
    model = HACMPretrainer(coordinates)
    x = identity_input(coordinates)
    sequences = to_sequences(x)
    plan = model.plan_masks(sequences, model.encoder.embed(sequences), generator=torch.Generator().manual_seed(3))
    # 1. tokens as cut from the input carry their own natural index
    tokens = patchify(sequences[:, :, :, model.encoder.token_joints], coordinates.t_patch).reshape(
        sequences.shape[0], coordinates.tokens, -1)
    natural = torch.arange(coordinates.tokens).expand(sequences.shape[0], -1)
    assert torch.equal(decode_identity(tokens, coordinates), natural)
    # 2. the encoder input (gathered at the plan's visible indices) holds exactly those tokens
    encoder_input = gather_tokens(tokens, plan.visible)
    assert torch.equal(decode_identity(encoder_input, coordinates), plan.visible)
    # 3. restoration puts each encoder output back at its natural position; masked positions get the fill
    fill = torch.full((1, 1, tokens.shape[-1]), -1.0)
    restored = restore_tokens(encoder_input, plan.visible, fill, coordinates.tokens)
    restored_index = decode_identity(restored, coordinates)
    assert torch.equal(restored_index[~plan.masked], natural[~plan.masked])
    assert (restored[plan.masked] == -1).all()
    # 4. the reconstruction target of token n is token n
    assert torch.equal(decode_identity(model.raw_target(sequences), coordinates), natural)


def test_same_seed_same_mask_and_other_seed_another():
    config = CONFIGS["hacm"]
    model = HACMPretrainer(config)
    sequences = to_sequences(identity_input(config))
    tokens = model.encoder.embed(sequences)

    def plan(seed):
        return model.plan_masks(sequences, tokens, generator=torch.Generator().manual_seed(seed)).visible

    assert torch.equal(plan(5), plan(5))
    assert not torch.equal(plan(5), plan(6))


def test_masks_do_not_depend_on_how_a_global_batch_is_split():
    config = CONFIGS["hacm"]
    model = HACMPretrainer(config)
    sequences = to_sequences(identity_input(config, batch=4))
    tokens = model.encoder.embed(sequences)
    whole = model.plan_masks(sequences, tokens, generator=torch.Generator().manual_seed(1)).visible
    halves = []
    for offset in (0, 4):
        part = sequences[offset : offset + 4]
        halves.append(model.plan_masks(part, model.encoder.embed(part), generator=torch.Generator().manual_seed(1),
                                       offset=offset, total=8).visible)
    assert torch.equal(torch.cat(halves), whole)


def test_selection_follows_scores_and_the_keep_switch():
    scores = torch.arange(100.0).expand(2000, -1)
    uniforms = torch.rand(2000, 100, generator=torch.Generator().manual_seed(0))
    high = select_visible(scores, uniforms, 10, temperature=0.1, keep_high=True)
    low = select_visible(scores, uniforms, 10, temperature=0.1, keep_high=False)
    assert high.float().mean() > 80 and low.float().mean() < 20
    flat = select_visible(torch.zeros(2000, 100), uniforms, 10, temperature=0.9, keep_high=True)
    assert 40 < flat.float().mean() < 60  # equal scores: uniform choice


def test_motion_scores_copy_the_second_patch_into_the_first():
    patches = torch.tensor([[0.0], [1.0], [3.0], [6.0]])[None, :, None, :].expand(1, 4, 2, 1)
    assert motion_scores(patches)[0, :, 0].tolist() == [1.0, 1.0, 2.0, 3.0]


def test_impossible_configurations_are_named():
    with pytest.raises(ConfigError, match="model.frames"):
        ModelConfig(frames=70, t_patch=3)
    with pytest.raises(ConfigError, match="contrast_weight"):
        ModelConfig(masking="random")
    with pytest.raises(ConfigError, match="token_joints"):
        ModelConfig(token_joints="all")
    with pytest.raises(ConfigError, match="unknown key 'depht'"):
        ModelConfig.from_dict({"depht": 3})
    assert ModelConfig(mask_ratio=0.9).visible_per_group(200) == 20
