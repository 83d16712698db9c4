"""model.release_objective: the release's own HA-CM objective (hacm.model.release_objective).

Each of its five differences from hacm's corrected objective on small hand-computed cases, then (with a
clone of the release, HACM_RELEASE_CHECKOUT) the release's own forward against hacm's with the switch on,
same weights, same noise."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch

import hacm.model.pretrainer as pretrainer_module
from hacm.config import ConfigError
from hacm.model import release_objective as release
from hacm.model.config import ModelConfig, preset
from hacm.model.criterion_scores import SCORES
from hacm.model.hyperbolic import BALL_MARGIN, poincare_distance, poincare_pairwise_distance, release_to_ball, to_ball
from hacm.model.masking import spatial_hierarchy_scores
from hacm.model.pretrainer import HACMPretrainer, to_sequences

SMALL = dict(dim=32, depth=1, heads=4, decoder_dim=32, decoder_depth=1, decoder_heads=4)
# 12 frames of t_patch 3: 4 time patches, two per group; 18 limb joints: H = 36 tokens and K = 3 per group.
TINY = dict(SMALL, frames=12, t_patch=3, release_objective=True)
J, PG, H = 18, 2, 36


def natural_of_joint_major(a: int) -> int:
    """The natural index of the temporal group's joint-major position a (joint a // PG, group patch a % PG)."""
    joint, group_patch = divmod(a, PG)
    return 2 * group_patch * J + joint


def natural_of_spatial(b: int) -> int:
    """The natural index of the spatial group's time-major position b."""
    group_patch, joint = divmod(b, J)
    return (2 * group_patch + 1) * J + joint


def uniforms_ranking(first: list[int], length: int) -> torch.Tensor:
    """(1, length) uniforms whose largest values sit at `first`, in that order (with equal scores the Gumbel
    keys are increasing in the uniforms, so these are the positions ranked first)."""
    values = torch.linspace(0.05, 0.5, length)
    for rank, position in enumerate(first):
        values[position] = 0.99 - 0.01 * rank
    return values[None]


def plan_with(model: HACMPretrainer, uniforms: list[torch.Tensor], monkeypatch, batch: int = 1):
    queue = list(uniforms)
    monkeypatch.setattr(pretrainer_module, "draw_uniforms", lambda generator, shape, **_: queue.pop(0))
    x = torch.randn(batch, 3, model.config.frames, 25, 1)
    sequences = to_sequences(x)
    return model.plan_masks(sequences, model.encoder.embed(sequences), generator=None)


# --- the switch ---------------------------------------------------------------------------------------

def test_the_switch_is_off_by_default_and_refused_outside_cross_masked_hacm():
    assert ModelConfig().release_objective is False
    with pytest.raises(ConfigError, match="model.release_objective: .*masking=cross"):
        preset("mamp", release_objective=True)
    with pytest.raises(ConfigError, match="model.release_objective: .*masking=cross"):
        ModelConfig(masking="single", contrast_weight=0.0, release_objective=True)
    with pytest.raises(ConfigError, match="model.release_objective: .*even number of time patches"):
        ModelConfig(frames=15, t_patch=3, release_objective=True)
    with pytest.raises(ConfigError, match="model.release_objective: expected true or false") as error:
        ModelConfig.from_dict({"release_objective": "yes"})
    assert "\n" not in str(error.value)


# --- (a) the decoder restore offset --------------------------------------------------------------------

def test_a_spatial_tokens_are_decoded_at_the_temporal_positions_ranked_after_the_kept_ones(monkeypatch):
    """ids_restore_s + 18 * 12 (model_hacm/transformer.py:480): the spatial half of the decoder sequence holds
    mask tokens only, and the spatial token of rank r sits at the temporal position of rank K_t + r."""
    model = HACMPretrainer(ModelConfig(**TINY, temporal_criterion="random", spatial_criterion="random"))
    temporal_first, spatial_first = [7, 30, 2, 11, 20, 5], [0, 35, 17]
    plan = plan_with(model, [uniforms_ranking(temporal_first, H), uniforms_ranking(spatial_first, H)], monkeypatch)
    # encoder: the temporal tokens kept (joint-major 7, 30, 2), then the spatial ones (time-major 0, 35, 17)
    expected_visible = [natural_of_joint_major(a) for a in temporal_first[:3]] + [natural_of_spatial(b)
                                                                                  for b in spatial_first]
    assert expected_visible == [39, 15, 1, 18, 71, 35]
    assert plan.visible.tolist() == [expected_visible] and plan.temporal_count == 3
    # decoder: temporal tokens at their own joint-major positions, spatial tokens at 11, 20, 5
    assert plan.slots.tolist() == [[7, 30, 2, 11, 20, 5]]
    assert (plan.slots < H).all(), "no encoded token reaches the spatial half"
    # the natural mask is the true one: the encoder saw exactly the visible tokens
    assert sorted(torch.nonzero(~plan.masked[0]).squeeze(1).tolist()) == sorted(expected_visible)


def test_a_the_decoder_receives_mask_tokens_everywhere_but_at_the_slots():
    model = HACMPretrainer(ModelConfig(**TINY))
    latent = torch.randn(1, 6, 32)
    slots = torch.tensor([[7, 30, 2, 11, 20, 5]])
    seen = {}
    model.decoder.register_forward_pre_hook(lambda module, args: seen.setdefault("input", args[0]))
    model.decode(latent, slots)
    positions = (model.decoder_joint_embed + model.decoder_time_embed).reshape(1, 2 * H, -1)
    restored = seen["input"] - positions
    embedded = model.decoder_embed(latent)
    for index, slot in enumerate(slots[0].tolist()):
        torch.testing.assert_close(restored[0, slot], embedded[0, index])
    others = [p for p in range(2 * H) if p not in slots[0].tolist()]
    torch.testing.assert_close(restored[0, others], model.mask_token[0].expand(len(others), -1))


# --- (b) the temporal loss mask joint-major, the target time-major -------------------------------------

def test_joint_major_positions_by_hand():
    # 2 patches x 3 joints: joint-major (joint 0: patches 0, 1; joint 1: ...) as time-major indices
    assert release.joint_major_positions(2, 3).tolist() == [0, 3, 1, 4, 2, 5]


def test_b_the_loss_mask_is_joint_major_in_the_temporal_half_and_the_target_time_major(monkeypatch):
    model = HACMPretrainer(ModelConfig(**TINY, temporal_criterion="random", spatial_criterion="random"))
    plan = plan_with(model, [uniforms_ranking([7, 30, 2, 11, 20, 5], H), uniforms_ranking([0, 35, 17], H)],
                     monkeypatch)
    # l.479: the loss counts at every position but the kept ones, joint-major in the temporal half
    expected = [p not in (7, 30, 2) for p in range(H)] + [b not in (0, 35, 17) for b in range(H)]
    assert plan.loss_mask.tolist() == [expected]
    # l.598-601: position p of the temporal half is compared with the temporal group's time-major token p
    temporal = [patch * J + joint for patch in (0, 2) for joint in range(J)]
    spatial = [patch * J + joint for patch in (1, 3) for joint in range(J)]
    assert model.release_targets.tolist() == temporal + spatial
    # so the kept token at joint-major 7 (natural 39) is excluded from the loss at position 7, whose target
    # is natural token 7, which was masked, while natural 39 (position 21 of the target) counts
    assert model.release_targets[7] == 7 and not plan.loss_mask[0, 7] and plan.masked[0, 7]
    assert model.release_targets[21] == 39 and plan.loss_mask[0, 21] and not plan.masked[0, 39]


def test_b_the_release_loss_mask_helper_by_hand():
    mask = release.loss_mask(torch.tensor([[1]]), torch.tensor([[2]]), 3)
    assert mask.tolist() == [[True, False, True, True, True, False]]


# --- (c) spatial scores joint-major, applied to time-major tokens ---------------------------------------

def test_c_joint_major_scores_by_hand():
    scores = torch.tensor([[10.0, 11.0, 12.0, 20.0, 21.0, 22.0]])  # patch 0: joints 0-2, patch 1: joints 0-2
    assert release.joint_major_scores(scores, 3).tolist() == [[10.0, 20.0, 11.0, 21.0, 12.0, 22.0]]


def test_c_spatial_scores_decide_about_other_tokens_temporal_ones_about_their_own():
    torch.manual_seed(0)
    model = HACMPretrainer(ModelConfig(**TINY))
    x = torch.randn(2, 3, 12, 25, 1)
    sequences = to_sequences(x)
    tokens = model.encoder.embed(sequences)
    temporal, spatial = model.group_scores(sequences, tokens)
    patches = torch.arange(4)
    natural_t = SCORES["attention"](model, sequences, tokens, patches[0::2]).reshape(2, -1)
    natural_s = SCORES["hierarchy"](model, sequences, tokens, patches[1::2]).reshape(2, -1)
    # temporal: scores and tokens both joint-major, each token keeps its own score
    assert temporal.members.tolist() == [natural_of_joint_major(a) for a in range(H)]
    torch.testing.assert_close(temporal.scores, release.joint_major_scores(natural_t, J))
    # spatial: tokens time-major, scores joint-major (l.455 vs 474-475)
    assert spatial.members.tolist() == [natural_of_spatial(b) for b in range(H)]
    torch.testing.assert_close(spatial.scores, release.joint_major_scores(natural_s, J))
    # so the spatial token at position 1 (patch 1, joint 1) is selected by the score of joint-major position 1:
    # joint 0 of the group's second patch (patch 3)
    assert spatial.members[1] == 1 * J + 1 and spatial.scores[0, 1] == natural_s[0, J]


# --- (d) the distance with 4 |u - v|^2 ----------------------------------------------------------------

def test_d_the_release_distance_has_a_factor_four_by_hand():
    u, v = torch.tensor([0.5, 0.0]), torch.tensor([0.0, 0.5])
    # |u - v|^2 = 0.5, (1 - |u|^2)(1 - |v|^2) = 0.5625
    textbook, theirs = math.acosh(1 + 2 * 0.5 / 0.5625), math.acosh(1 + 4 * 0.5 / 0.5625)
    assert poincare_distance(u, v, 1.0).item() == pytest.approx(textbook, rel=1e-6)
    assert poincare_distance(u, v, 1.0, release_form=True).item() == pytest.approx(theirs, rel=1e-6)
    points = torch.stack([u, v])
    pairwise = poincare_pairwise_distance(points, 1.0, release_form=True)
    assert pairwise[0, 1].item() == pytest.approx(theirs, rel=1e-6) and pairwise[0, 0] == 0
    # curvature c: arcosh(1 + 4c|u - v|^2 / ((1 - c|u|^2)(1 - c|v|^2))) / sqrt(c)
    c = 2.0
    expected = math.acosh(1 + 4 * c * 0.5 / ((1 - c * 0.25) ** 2)) / math.sqrt(c)
    assert poincare_distance(u, v, c, release_form=True).item() == pytest.approx(expected, rel=1e-6)


def test_d_near_the_rim_the_closed_form_rounds_as_the_release():
    """The release's hyperbolic_distance (l.411-420) on points whose 1 - |x|^2 is a few float32 steps (its
    projection leaves norms up to 1 - 6e-8): the closed form squares the rounded norms as it does."""
    generator = torch.Generator().manual_seed(0)
    directions = torch.nn.functional.normalize(torch.randn(6, 64, generator=generator), dim=-1)
    points = directions * torch.tensor([0.9999995, 0.9999990, 0.99999, 0.9999, 0.99, 0.5])[:, None]

    def theirs(u, v):  # the release's formula, written out
        return torch.arccosh(1 + (2 * torch.norm(u - v, dim=-1)) ** 2
                             / ((1 - torch.norm(u, dim=-1) ** 2) * (1 - torch.norm(v, dim=-1) ** 2)))

    expected = theirs(points[:, None], points[None, :])
    expected.fill_diagonal_(0)
    got = poincare_pairwise_distance(points, 1.0, release_form=True)
    assert ((got - expected).abs() / expected.clamp_min(1e-6)).max() < 1e-5


def test_d_the_spatial_scores_use_the_release_distance():
    points = torch.tensor([[0.5, 0.0], [0.0, 0.5], [0.0, 0.0]])[None, None]  # one patch, three tokens
    parents = torch.zeros(1, 1, 2)
    scores = spatial_hierarchy_scores(points, parents, curvature=1.0, parent_weight=0.01, hyperbolic=True,
                                      release_form=True)
    d_uv, d_u0 = math.acosh(1 + 4 * 0.5 / 0.5625), math.acosh(1 + 4 * 0.25 / 0.75)
    expected = [d_uv + d_u0 + 0.01 * d_u0, d_uv + d_u0 + 0.01 * d_u0, 2 * d_u0]
    torch.testing.assert_close(scores[0, 0], torch.tensor(expected))


# --- (e) the ball clip only where the norm reaches 1 ----------------------------------------------------

def test_e_the_release_rescales_only_norms_that_reach_one():
    direction = torch.tensor([0.6, 0.8])
    vectors = torch.stack([direction * 0.5, direction * 7.5, direction * 20.0, torch.zeros(2)])
    points = release_to_ball(vectors, 1.0)
    norms = points.norm(dim=-1)
    assert norms[0].item() == pytest.approx(math.tanh(0.5), rel=1e-6)
    tanh_7_5 = torch.tanh(torch.tensor(7.5)).item()  # 0.9999994 in float32: below 1, left where it is
    assert 1 - BALL_MARGIN < tanh_7_5 < 1 and norms[1].item() == pytest.approx(tanh_7_5, rel=1e-7)
    assert norms[2].item() == pytest.approx(1 - BALL_MARGIN, rel=1e-7)  # tanh(20) rounds to 1: rescaled
    assert points[3].tolist() == [0.0, 0.0]
    torch.testing.assert_close(points / norms[:, None].clamp_min(1e-12),
                               torch.stack([direction, direction, direction, torch.zeros(2)]))
    # hacm's own projection clips the middle one to 1 - 1e-5
    from hacm.model.hyperbolic import ball

    assert to_ball(vectors, ball(1.0)).norm(dim=-1)[1].item() == pytest.approx(1 - BALL_MARGIN, rel=1e-7)


def test_e_curvature_moves_the_boundary_to_one_over_root_c():
    vectors = torch.tensor([[20.0, 0.0], [0.1, 0.0]])
    points = release_to_ball(vectors, 4.0)
    assert points[0, 0].item() == pytest.approx((1 - BALL_MARGIN) / 2, rel=1e-7)
    assert points[1, 0].item() == pytest.approx(math.tanh(0.2) / 2, rel=1e-6)


def test_e_the_encoder_consumes_and_the_target_is_made_of_the_release_points():
    torch.manual_seed(0)
    model = HACMPretrainer(ModelConfig(**TINY))
    embeddings = torch.randn(2, 4, J, 32) * 5
    torch.testing.assert_close(model.encoder.to_points(embeddings), release_to_ball(embeddings, 1.0), rtol=0, atol=0)
    default = HACMPretrainer(ModelConfig(**SMALL, frames=12, t_patch=3))
    assert not torch.equal(default.encoder.to_points(embeddings), model.encoder.to_points(embeddings))
    # a motion of norm 7.5 (joint 2, the first limb token, between frames 0 and 1): tanh 7.5 < 1 stays for the
    # release (l.597), hacm clips it to 1 - 1e-5
    sequences = torch.zeros(1, 3, 12, 25)
    sequences[0, :2, 1, 2] = torch.tensor([0.6, 0.8]) * 7.5
    first = {name: m.raw_target(sequences)[0, 0, :3].norm().item() for name, m in (("release", model),
                                                                                   ("hacm", default))}
    assert first["release"] == pytest.approx(torch.tanh(torch.tensor(7.5)).item(), rel=1e-7)
    assert first["hacm"] == pytest.approx(1 - BALL_MARGIN, rel=1e-7)


def test_the_switch_trains():
    torch.manual_seed(0)
    config = ModelConfig(**TINY)
    model = HACMPretrainer(config)
    output = model(torch.randn(3, 3, 12, 25, 2), generator=torch.Generator().manual_seed(0))
    output.loss.backward()
    assert torch.isfinite(output.loss) and output.contrast > 0
    assert all(p.grad is not None for name, p in model.named_parameters() if p.requires_grad)


# --- against the release's own forward ------------------------------------------------------------------

CHECKOUT = os.environ.get("HACM_RELEASE_CHECKOUT")
needs_release = pytest.mark.skipif(
    not CHECKOUT, reason="HACM_RELEASE_CHECKOUT is not set: point it to a git clone of YinxPeng/HA-CM-main (with "
                         "its history: mask_hyper_matrix is taken from commit 5755d8a) to compare with its forward")
SEEDS = (0, 1, 2)
LOSS_ATOL = 1e-5  # measured: at most 7e-7 over 10 seeds (losses 1.9-3.3)
H_PAPER = 12 * 18  # tokens per group at T 72, t_patch 3


def skeletons(seed: int, samples: int = 4, frames: int = 72) -> torch.Tensor:
    """Random-walk joints (metres), the second body absent in half of the samples (as in NTU)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, 3, 1, 25, 2, generator=generator) * 0.3
    x = x + torch.cumsum(torch.randn(samples, 3, frames, 25, 2, generator=generator) * 0.01, dim=2)
    x[samples // 2:, ..., 1] = 0
    return x


@pytest.fixture(scope="module")
def release_and_config(tmp_path_factory):
    from hacm.compare import model_sizes
    from hacm.release.checkout import MASK_COMMIT, release_model
    from hacm.release.keymap import map_state

    torch.manual_seed(0)
    theirs = release_model(Path(CHECKOUT), MASK_COMMIT, tmp_path_factory.mktemp("release"))
    with torch.no_grad():  # biases and norms away from 0 / 1, so that a wrongly mapped key cannot hide
        for name, parameter in theirs.named_parameters():
            if name.endswith("bias") or "norm" in name:
                parameter.add_(torch.randn_like(parameter) * 0.05)
    weights, _ = map_state(theirs.state_dict(), "release-hacm")
    return theirs, weights, model_sizes("paper")[0]


def hacm_twin(weights: dict, sizes: dict, *, release_objective: bool) -> HACMPretrainer:
    model = HACMPretrainer(ModelConfig(**sizes, release_objective=release_objective))
    problems = model.load_state_dict(weights, strict=False)
    assert set(problems.missing_keys) <= {"encoder.manifold.isp_c"} and not problems.unexpected_keys, problems
    return model


def both_losses(theirs, ours, x, seed, monkeypatch):
    from hacm.release.checkout import RELEASE_FORWARD

    sequences = x.shape[0] * x.shape[-1]
    generator = torch.Generator().manual_seed(100 + seed)
    uniforms = [torch.rand(sequences, H_PAPER, generator=generator) for _ in range(2)]  # temporal, spatial
    served = list(uniforms)
    with monkeypatch.context() as patch:  # the release draws each group's noise with torch.rand(S, L)
        patch.setattr(torch, "rand", lambda *shape, **_: served.pop(0).clone())
        their_loss = theirs(x, **RELEASE_FORWARD)
    assert not served
    served = list(uniforms)
    with monkeypatch.context() as patch:
        patch.setattr(pretrainer_module, "draw_uniforms", lambda generator, shape, **_: served.pop(0).clone())
        output = ours(x)
    assert not served
    return their_loss, output


@needs_release
def test_the_release_forward_equals_hacm_with_the_switch_on(release_and_config, monkeypatch):
    theirs, weights, sizes = release_and_config
    ours, corrected = (hacm_twin(weights, sizes, release_objective=flag) for flag in (True, False))
    for seed in SEEDS:
        x = skeletons(seed)
        their_loss, output = both_losses(theirs, ours, x, seed, monkeypatch)
        assert abs(their_loss.item() - output.loss.item()) <= LOSS_ATOL, (seed, their_loss.item(), output.loss.item())
        _, corrected_output = both_losses(theirs, corrected, x, seed, monkeypatch)
        assert abs(their_loss.item() - corrected_output.loss.item()) > 1e-3, "the switch changes nothing"


@needs_release
def test_the_release_gradients_equal_hacm_with_the_switch_on(release_and_config, monkeypatch):
    theirs, weights, sizes = release_and_config
    ours = hacm_twin(weights, sizes, release_objective=True)
    theirs.zero_grad()
    their_loss, output = both_losses(theirs, ours, skeletons(7), 7, monkeypatch)
    their_loss.backward()
    output.loss.backward()
    from hacm.release.keymap import map_state

    their_grads, _ = map_state({name: p.grad for name, p in theirs.named_parameters() if p.grad is not None},
                               "release-hacm")
    for name, parameter in ours.named_parameters():
        if parameter.grad is None:
            continue
        expected = their_grads[name]
        scale = expected.abs().max().item()
        assert (parameter.grad - expected).abs().max().item() <= 1e-4 * scale + 1e-12, name
