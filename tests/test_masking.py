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
    "hacm_release_objective": ModelConfig(release_objective=True, **SMALL),
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


@pytest.mark.parametrize("name", ["hacm", "hacm_release_objective"])
def test_masks_do_not_depend_on_how_a_global_batch_is_split(name):
    config = CONFIGS[name]
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
    high = select_visible(scores, uniforms, 10, divisor=0.1, keep_high=True)
    low = select_visible(scores, uniforms, 10, divisor=0.1, keep_high=False)
    assert high.float().mean() > 80 and low.float().mean() < 20
    flat = select_visible(torch.zeros(2000, 100), uniforms, 10, divisor=0.9, keep_high=True)
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


def test_baselines_keep_int_of_l_times_one_minus_r_as_mamp_and_hacm_the_releases_count():
    # MAMP's len_keep = int(L * (1 - mask_ratio)) (model_mamp/transformer.py:286, model_mae/transformer.py:283):
    # 1 - 0.9 is just below 0.1, so 750 tokens keep 74 and 250 keep 24
    assert int(750 * (1 - 0.9)) == 74 and int(250 * (1 - 0.9)) == 24
    for method in ("mamp", "mae"):
        config = preset(method, frames=120, t_patch=4, **SMALL)
        assert config.tokens == 750 and config.visible_per_group(750) == 74
        assert preset(method, **SMALL).visible_per_group(250) == 24
        model = HACMPretrainer(config)
        sequences = to_sequences(identity_input(config, batch=1))
        plan = model.plan_masks(sequences, model.encoder.embed(sequences), generator=torch.Generator().manual_seed(0))
        assert plan.visible.shape == (2, 74) and int((~plan.masked).sum()) == 2 * 74
    # HA-CM: the release's mask_hyper_matrix keeps int(0.1 * L) per group (commit 5755d8a, l.442): 21 of the
    # 216 tokens of a group at T 72, 27 of 270 at T 120 (where int(270 * (1 - 0.9)) would give 26)
    assert int(270 * (1 - 0.9)) == 26
    for frames, t_patch, group, kept in ((72, 3, 216, 21), (120, 4, 270, 27)):
        config = ModelConfig(frames=frames, t_patch=t_patch, **SMALL)
        assert config.tokens == 2 * group and config.visible_per_group(group) == kept
        model = HACMPretrainer(config)
        sequences = to_sequences(identity_input(config, batch=1))
        plan = model.plan_masks(sequences, model.encoder.embed(sequences), generator=torch.Generator().manual_seed(0))
        assert plan.temporal_count == kept and plan.visible.shape == (2, 2 * kept)
    hacm = ModelConfig()
    assert all(hacm.visible_per_group(length) == int(0.1 * length) for length in range(1, 5000))
    # random or motion masking of HA-CM's limb tokens (the mask figure's panels) keeps what HA-CM keeps
    for masking in ("random", "motion"):
        assert ModelConfig(masking=masking, contrast_weight=0.0, frames=120, t_patch=4).visible_per_group(540) == 54
