"""Token scores and selection for masking (docs/method.md §2.3-2.6, §2.9), as pure functions.

Shapes: S sequences (one body each), P time patches, J token joints per patch, D width. A group's
tokens are flattened in natural order (time patch major, joint minor), the one order used everywhere.
Randomness comes in as uniforms so that a mask depends only on the generator that drew them.
"""

from __future__ import annotations

import torch

from hacm.model.hyperbolic import euclidean_pairwise_distance, poincare_distance, poincare_pairwise_distance

_EPS = 1e-6
_UNIFORM_EPS = 1e-12


def temporal_attention_scores(
    embeddings: torch.Tensor, w_q: torch.Tensor, w_k: torch.Tensor, b_q: torch.Tensor, b_k: torch.Tensor
) -> torch.Tensor:
    """How strongly each joint dominates the attention into its time patch (docs/method.md §2.4, the release's
    formula in model_hacm/transformer.py forward_encoder + mask_hyper_matrix).

    embeddings: (S, P, J, D) Euclidean token embeddings (with position embeddings). q = W_q e + b_q,
    k = W_k e + b_k; l[v, t, u] = q[t, v] . k[u, v] * sqrt(D); A = softmax of l over the joints v;
    score of token (u, v) = sum over t of A[v, t, u]. -> (S, P, J)
    """
    per_joint = embeddings.float().transpose(1, 2).contiguous()  # (S, J, P, D); contiguous: else matmul expands W
    queries = per_joint @ w_q.float().t() + b_q.float()
    keys = per_joint @ w_k.float().t() + b_k.float()
    logits = queries @ keys.transpose(-1, -2) * embeddings.shape[-1] ** 0.5  # (S, J, P_t, P_u)
    received = logits.softmax(dim=1).sum(dim=2)  # softmax over joints, summed over the query patches t
    return received.transpose(1, 2)


def spatial_hierarchy_scores(
    points: torch.Tensor, parents: torch.Tensor, *, curvature: float, parent_weight: float, hyperbolic: bool,
    release_form: bool = False,
) -> torch.Tensor:
    """Per time patch: sum of distances to the other limb tokens plus weight x distance to the parent.

    points: (S, P, J, D) token points (in the ball when hyperbolic); parents: (S, P, D). -> (S, P, J)
    release_form: the release's hyperbolic distance (hacm.model.hyperbolic.poincare_distance).
    """
    if hyperbolic:
        pairwise = poincare_pairwise_distance(points, curvature, release_form=release_form)
        to_parent = poincare_distance(points.float(), parents.float()[:, :, None, :], curvature,
                                      release_form=release_form)
    else:
        pairwise = euclidean_pairwise_distance(points)
        to_parent = (points.float() - parents.float()[:, :, None, :]).norm(dim=-1)
    return pairwise.sum(dim=-1) + parent_weight * to_parent


def motion_scores(patches: torch.Tensor) -> torch.Tensor:
    """MAMP's token motion: mean |patch - same joint's previous patch|; the first patch copies the second.

    patches: (S, P, J, t_patch * C) coordinates. -> (S, P, J)
    """
    motion = (patches[:, 1:] - patches[:, :-1]).abs().mean(dim=-1)
    return torch.cat([motion[:, :1], motion], dim=1)


def scaled_scores(scores: torch.Tensor, *, scaling: str, divisor: float) -> torch.Tensor:
    """Scores put on the scale the softmax sees (docs/method.md §2.6), per row; either way the scaled
    scores reach 1 / divisor at most.

    max (the release, MAMP): s / (divisor * max s + eps), divisor = ModelConfig.score_max_fraction (the
    release's 0.9, MAMP's tau); for s >= 0 the spread is at most 1 / divisor, and less where min s > 0.
    minmax: (s - min s) / (max s - min s + eps) / divisor, divisor = ModelConfig.score_temperature; a spread
    of exactly 1 / divisor."""
    scores = scores.float()
    if scaling == "max":
        return scores / (divisor * scores.max(dim=-1, keepdim=True).values + _EPS)
    low, high = scores.min(dim=-1, keepdim=True).values, scores.max(dim=-1, keepdim=True).values
    return (scores - low) / (high - low + _EPS) / divisor


def gumbel_noise(uniforms: torch.Tensor) -> torch.Tensor:
    return -torch.log(-torch.log(uniforms.float().clamp(_UNIFORM_EPS, 1.0 - _UNIFORM_EPS)))


def gumbel_selection_keys(
    scores: torch.Tensor, uniforms: torch.Tensor, *, divisor: float, keep_high: bool, scaling: str = "max"
) -> torch.Tensor:
    """log softmax(scaled scores) + Gumbel noise; negated when low scores are kept."""
    scaled = scaled_scores(scores, scaling=scaling, divisor=divisor)
    keys = scaled.log_softmax(dim=-1) + gumbel_noise(uniforms)
    return keys if keep_high else -keys


def select_visible(
    scores: torch.Tensor, uniforms: torch.Tensor, count: int, *, divisor: float, keep_high: bool,
    scaling: str = "max",
) -> torch.Tensor:
    """Indices (S, count), ascending, of the tokens that stay visible in each row of a group."""
    keys = gumbel_selection_keys(scores, uniforms, divisor=divisor, keep_high=keep_high, scaling=scaling)
    return largest_keys(keys, count)


def largest_keys(keys: torch.Tensor, count: int) -> torch.Tensor:
    """Indices (S, count), ascending, of each row's `count` largest selection keys."""
    return keys.topk(count, dim=-1, sorted=False).indices.sort(dim=-1).values


def masked_from_kept(kept: torch.Tensor, length: int) -> torch.Tensor:
    """(S, length) True where masked, from the (S, K) kept positions."""
    masked = torch.ones(kept.shape[0], length, dtype=torch.bool, device=kept.device)
    return masked.scatter_(1, kept, False)
