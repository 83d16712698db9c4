"""The HA-CM rows: the release's model (model_hacm, with mask_hyper_matrix) and its evaluation model against
hacm's HACMPretrainer holding the same weights, on the same input and the same masking noise.

Token orders. hacm uses one natural order (patch-major, joint-minor) everywhere. The release's temporal
group is joint-major (its scores, tokens and mask); its spatial scores are joint-major but are applied to
time-major tokens; its target is time-major. Every comparison below puts the release's tensors into
hacm's order first, and the temporal uniforms are handed to the release in its joint-major order, so that
each token meets the same uniform on both sides.

The fixed-mask rows drive the release's own pieces (joints_embed, blocks, norm, forward_decoder with a
natural-order ids_restore, forward_loss on its own extract_motion / expmap_with_projection / patchify
target) with hacm's mask: the loss of one mask in one order, the release's functions against hacm's.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from pathlib import Path

import torch

from hacm.methods import METHODS
from hacm.model.hyperbolic import BALL_MARGIN
from hacm.model.masking import spatial_hierarchy_scores
from hacm.model.pretrainer import HACMPretrainer, MaskPlan, gather_tokens, to_sequences
from hacm.release.checkout import RELEASE_FORWARD, ReleaseError, release_eval_model, release_model
from hacm.release.encoder_rows import features_row, weights_row
from hacm.release.noise import hacm_generator, hacm_uniforms, served
from hacm.release.pairs import hacm_config, hacm_pair, perturb_biases_and_norms, release_args, synthetic_batch
from hacm.release.rows import Row, compared, kept_sets

METHOD = METHODS["hacm"].label
CORRECTED = ("corrected objective: decoder restore offset (ids_restore_s + 18*12), loss-mask order, "
             "spatial score order, distance factor 4, clip rule")
CLIP_RULE = "clip rule (the release rescales only norms >= 1, to 1 - 1e-5)"
FACTOR_4 = "distance factor 4 (release arccosh(1 + 4|u-v|^2/...): ratio in [1, sqrt 2])"
SPATIAL = "distance factor 4, clip rule"
SPATIAL_APPLIED = "spatial score order (joint-major scores on time-major tokens), distance factor 4, clip rule"
RELEASE_OBJECTIVE = "release_objective"  # hacm.model.config.ModelConfig's switch to the release's own loss
_RATIO_SLACK = 1e-4


def joint_major(values: torch.Tensor, patches: int, joints: int) -> torch.Tensor:
    """(S, P * J) in hacm's natural order -> the release's joint-major order (S, J * P)."""
    return values.reshape(-1, patches, joints).transpose(1, 2).reshape(values.shape[0], -1)


def time_major(values: torch.Tensor, patches: int, joints: int) -> torch.Tensor:
    """(S, J * P) joint-major -> hacm's natural order (S, P * J)."""
    return values.reshape(-1, joints, patches).transpose(1, 2).reshape(values.shape[0], -1)


def natural_restore(visible: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
    """The ids_restore that puts the visible tokens ((S, K) natural indices, in that order) back at their
    natural places; `masked`: (S, L) True where masked."""
    count, length = masked.shape
    rest = torch.arange(length).expand(count, length)[masked].reshape(count, -1)
    return torch.argsort(torch.cat([visible, rest], dim=1), dim=1)


def recorded_forward(release: torch.nn.Module, x: torch.Tensor, uniforms: list[torch.Tensor]):
    """The release's loss with the given uniforms, and each mask_hyper_matrix call's (matrix, mask)."""
    calls = []
    method = release.mask_hyper_matrix

    def recording(matrix, tokens):
        result = method(matrix, tokens)
        calls.append((matrix.detach(), result[1].detach()))
        return result

    release.mask_hyper_matrix = recording
    try:
        with served(uniforms), torch.no_grad():
            loss = release(x, **RELEASE_FORWARD)
    except Exception as error:
        raise ReleaseError(f"the release's forward failed: {type(error).__name__}: {error}") from None
    finally:
        del release.mask_hyper_matrix
    return loss, calls


def _fixed_mask_losses(release, model: HACMPretrainer, sequences: torch.Tensor, plan: MaskPlan):
    """The release's prediction, L_cc, raw target and reconstruction loss for hacm's mask, by its own pieces."""
    layout = sequences.permute(0, 2, 3, 1)  # (S, T, V, C), the release's
    limbs, trunk = layout[:, :, model.encoder.token_joints], layout[:, :, model.encoder.trunk_joints]
    with torch.no_grad():
        embedded, _ = release.joints_embed(limbs, trunk)
        embedded = embedded + release.pos_embed + release.temp_embed
        points = release.embedding.expmap_with_projection(embedded).reshape(len(sequences), model.config.tokens, -1)
        latent = gather_tokens(points, plan.visible)
        for block in release.blocks:
            latent = block(latent)
        latent = release.norm(latent)
        prediction, contrast = release.forward_decoder(latent, natural_restore(plan.visible, plan.masked))
        target = release.patchify(release.embedding.expmap_with_projection(release.extract_motion(limbs)))
        reconstruction = release.forward_loss(target, prediction, plan.masked.float())
    return prediction, contrast, target, reconstruction


def _score_rows(release, model: HACMPretrainer, tokens, groups, calls) -> list[Row]:
    config = model.config
    half, joints = config.patches // 2, config.joints_per_patch
    temporal = time_major(calls[0][0].sum(dim=-2).reshape(len(groups[0].scores), -1), half, joints)
    spatial = time_major(calls[1][0].sum(dim=-2).reshape(len(groups[1].scores), -1), half, joints)
    rows = [compared(METHOD, "temporal scores (time-major)", temporal, groups[0].scores)]
    with torch.no_grad():
        points = release.embedding.expmap_with_projection(tokens.euclidean)
        parents = release.embedding.expmap_with_projection(tokens.trunk).mean(dim=2)
    points_row = compared(METHOD, "token points in the ball", points, tokens.points, expected=CLIP_RULE,
                          explained=(points - tokens.points).abs().max().item() <= 2 * BALL_MARGIN)
    formula = spatial_hierarchy_scores(points[:, 1::2], parents[:, 1::2], curvature=config.curvature,
                                       parent_weight=config.parent_weight, hyperbolic=True).reshape(spatial.shape)
    ratio = spatial[formula > 0] / formula[formula > 0]
    low, high = ratio.min().item(), ratio.max().item()
    factor_row = compared(METHOD, "spatial scores: hacm's formula on the release's points", spatial, formula,
                          detail=f"release / hacm ratio in [{low:.4f}, {high:.4f}]", expected=FACTOR_4,
                          explained=1 - _RATIO_SLACK <= low and high <= math.sqrt(2) + _RATIO_SLACK)
    rows += [points_row, factor_row]
    if "release_form" in inspect.signature(spatial_hierarchy_scores).parameters:  # hacm's release objective has it
        release_formula = spatial_hierarchy_scores(points[:, 1::2], parents[:, 1::2], curvature=config.curvature,
                                                   parent_weight=config.parent_weight, hyperbolic=True,
                                                   release_form=True).reshape(spatial.shape)
        rows.append(compared(METHOD, "spatial scores: hacm's release_form on the release's points", spatial,
                             release_formula))
    spatial_row = compared(METHOD, "spatial scores (time-major)", spatial, groups[1].scores, expected=SPATIAL,
                           explained=points_row.passed and factor_row.passed)
    return rows + [spatial_row]


def hacm_rows(checkout: Path, *, size: str, seed: int = 0) -> list[Row]:
    """Every HA-CM row at `size` (small: depth 2, decoder depth 1; paper: the release's config)."""
    args = release_args(size)
    torch.manual_seed(seed)
    release = release_model(checkout, model_args=args).eval()
    perturb_biases_and_norms(release, seed=seed)
    config = hacm_config(args, "hacm")
    model, copy = hacm_pair(release, config, "release-hacm")
    rows = [weights_row(METHOD, copy)]
    if copy.problems:
        return rows
    x = synthetic_batch(args["num_frames"], seed=seed)
    rows.append(features_row(METHOD, release_eval_model(checkout, model_args=args), release.state_dict(),
                             model.encoder, x))

    sequences = to_sequences(x)
    count, half, joints = len(sequences), config.patches // 2, config.joints_per_patch
    with torch.no_grad():
        tokens = model.encoder.embed(sequences)
        groups = model.group_scores(sequences, tokens)
        out = model(x, generator=hacm_generator(seed))
    u_temporal, u_spatial = hacm_uniforms(seed, [tuple(group.scores.shape) for group in groups])
    # The release with each token's own uniform (its temporal group is joint-major).
    _, calls = recorded_forward(release, x, [joint_major(u_temporal, half, joints), u_spatial])
    rows += _score_rows(release, model, tokens, groups, calls)

    ours_temporal, ours_spatial = ~out.plan.masked[:, model.temporal_group], ~out.plan.masked[:, model.spatial_group]
    rows.append(kept_sets(METHOD, "temporal kept tokens, same uniforms", time_major(calls[0][1], half, joints) == 0,
                          ours_temporal))
    spatial_scores = groups[1].scores  # as a (S, 1, 1, L) "matrix" whose column sums are the scores
    with served([u_spatial]), torch.no_grad():
        _, selected, _ = release.mask_hyper_matrix(spatial_scores.reshape(count, 1, 1, -1),
                                                   torch.zeros(count, spatial_scores.shape[1], 1))
    selector_row = kept_sets(METHOD, "spatial kept tokens: release selector on hacm's scores", selected == 0,
                             ours_spatial)
    rows += [selector_row, kept_sets(METHOD, "spatial kept tokens, as the release applies them", calls[1][1] == 0,
                                     ours_spatial, expected=SPATIAL_APPLIED, explained=selector_row.passed)]

    prediction, contrast, target, reconstruction = _fixed_mask_losses(release, model, sequences, out.plan)
    with torch.no_grad():
        raw_target = model.raw_target(sequences)
    fixed = [compared(METHOD, "reconstruction target (motion in the ball)", target, raw_target),
             compared(METHOD, "decoder predictions, fixed mask", prediction, out.prediction),
             compared(METHOD, "reconstruction loss, fixed mask", reconstruction, out.reconstruction,
                      detail=f"release {reconstruction.item():.7f}, hacm {out.reconstruction.item():.7f}"),
             compared(METHOD, "L_cc, fixed mask", contrast, out.contrast,
                      detail=f"release {contrast.item():.7f}, hacm {out.contrast.item():.7f}"),
             compared(METHOD, "total loss, fixed mask", reconstruction + contrast, out.loss,
                      detail=f"release {(reconstruction + contrast).item():.7f}, hacm {out.loss.item():.7f}")]
    rows += fixed

    # Each side's own forward on the same uniforms, handed to the release as it draws them.
    theirs, _ = recorded_forward(release, x, [u_temporal, u_spatial])
    rows.append(compared(METHOD, "total loss, each side's own forward", theirs, out.loss,
                         detail=f"release {theirs.item():.7f}, hacm {out.loss.item():.7f}", expected=CORRECTED,
                         explained=all(row.passed for row in fixed)))
    rows += release_objective_rows(release, model, x, theirs, seed)
    return rows


def release_objective_rows(release, model: HACMPretrainer, x: torch.Tensor, theirs: torch.Tensor,
                           seed: int) -> list[Row]:
    """hacm with release_objective=True against the release's own forward, where hacm's ModelConfig has the
    switch (checked at run time); [] where it has not."""
    if RELEASE_OBJECTIVE not in {field.name for field in dataclasses.fields(model.config)}:
        return []
    quantity = "total loss, hacm release_objective=True vs the release's forward"
    try:
        twin = HACMPretrainer(dataclasses.replace(model.config, **{RELEASE_OBJECTIVE: True}))
        twin.load_state_dict(model.state_dict())
        with torch.no_grad():
            ours = twin.eval()(x, generator=hacm_generator(seed)).loss
    except Exception as error:  # hacm's own code: a failure is a finding, reported in its row
        return [Row(METHOD, quantity, float("inf"), 0.0, f"{type(error).__name__}: {error}")]
    return [compared(METHOD, quantity, theirs, ours, detail=f"release {theirs.item():.7f}, hacm {ours.item():.7f}")]
