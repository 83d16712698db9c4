"""Token scores and selection for masking (DESIGN §2.3-2.6, §2.9), as pure functions.

Shapes: S sequences (one body each), P time patches, J token joints per patch, D width. A group's
tokens are flattened in natural order (time patch major, joint minor), the one order used everywhere.
Randomness comes in as uniforms so that a mask depends only on the generator that drew them.
"""

from __future__ import annotations

import torch

from hacm.model.hyperbolic import euclidean_pairwise_distance, poincare_distance, poincare_pairwise_distance

_EPS = 1e-6
_UNIFORM_EPS = 1e-12


def temporal_attention_scores(embeddings: torch.Tensor, w_q: torch.Tensor, w_k: torch.Tensor) -> torch.Tensor:
    """Attention each token receives from the other time patches of its joint.

    embeddings: (S, P, J, D) Euclidean token embeddings (with position embeddings). Per joint,
    A = softmax_keys(q k^T / sqrt(D)) over the P patches; score = sum over queries. -> (S, P, J)
    """
    per_joint = embeddings.float().transpose(1, 2).contiguous()  # (S, J, P, D); contiguous: else matmul expands W
    queries = per_joint @ w_q.float().t()
    keys = per_joint @ w_k.float().t()
    logits = queries @ keys.transpose(-1, -2) / embeddings.shape[-1] ** 0.5
    received = logits.softmax(dim=-1).sum(dim=-2)  # (S, J, P): column sums
    return received.transpose(1, 2)


def spatial_hierarchy_scores(
    points: torch.Tensor, parents: torch.Tensor, *, curvature: float, parent_weight: float, hyperbolic: bool
) -> torch.Tensor:
    """Per time patch: sum of distances to the other limb tokens plus weight x distance to the parent.

    points: (S, P, J, D) token points (in the ball when hyperbolic); parents: (S, P, D). -> (S, P, J)
    """
    if hyperbolic:
        pairwise = poincare_pairwise_distance(points, curvature)
        to_parent = poincare_distance(points.float(), parents.float()[:, :, None, :], curvature)
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


def gumbel_selection_keys(
    scores: torch.Tensor, uniforms: torch.Tensor, *, temperature: float, keep_high: bool
) -> torch.Tensor:
    """log softmax(s / (temperature * max s + eps)) + Gumbel noise; negated when low scores are kept."""
    scores = scores.float()
    scaled = scores / (temperature * scores.max(dim=-1, keepdim=True).values + _EPS)
    gumbel = -torch.log(-torch.log(uniforms.float().clamp(_UNIFORM_EPS, 1.0 - _UNIFORM_EPS)))
    keys = scaled.log_softmax(dim=-1) + gumbel
    return keys if keep_high else -keys


def select_visible(
    scores: torch.Tensor, uniforms: torch.Tensor, count: int, *, temperature: float, keep_high: bool
) -> torch.Tensor:
    """Indices (S, count), ascending, of the tokens that stay visible in each row of a group."""
    keys = gumbel_selection_keys(scores, uniforms, temperature=temperature, keep_high=keep_high)
    return keys.topk(count, dim=-1, sorted=False).indices.sort(dim=-1).values
