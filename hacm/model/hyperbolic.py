"""Poincaré-ball geometry (docs/method.md §2.2, §2.5), always computed in float32 or wider.

Mapping uses geoopt's PoincareBall (exponential map at the origin, then projection inside the ball),
with geoopt's expmap0 restated in eager operations (`expmap0`).
Pairwise distances are computed in closed form from squared norms and inner products, so a set of L
points costs one L x L Gram matrix instead of an L x L x D tensor of differences:

    d_c(x, y) = arcosh(1 + 2 c |x - y|^2 / ((1 - c |x|^2) (1 - c |y|^2))) / sqrt(c)

The release's objective (ModelConfig.release_objective) uses the release's variants: its distance
(`release_form`: a 4 for the 2, squared norms rounded as it rounds them) and its map into the ball
(`release_to_ball`).
"""

from __future__ import annotations

import geoopt
import torch

_MIN_DENOMINATOR = 1e-15
# The release projects to radius (1 - 1e-5) / sqrt(c) whatever the dtype (model_hacm/transformer.py,
# HyperbolicEmbedding.project); geoopt's float32 projection would clip at 1 - 4e-3.
BALL_MARGIN = 1e-5
# The release's hyperbolic_distance squares 2|x - y| (model_hacm/transformer.py:417-419): 4 |x - y|^2
# where the Poincaré distance has 2 |x - y|^2.
RELEASE_GAP_FACTOR = 4.0
TEXTBOOK_GAP_FACTOR = 2.0


def _full_precision(tensor: torch.Tensor) -> torch.Tensor:
    return tensor if tensor.dtype in (torch.float32, torch.float64) else tensor.float()


def ball(curvature: float) -> geoopt.PoincareBall:
    manifold = geoopt.PoincareBall(c=curvature, learnable=False)  # the curvature is a setting, not learnt
    # The projection radius as a Python number, read from the ball's own c once: reading c (a tensor) at
    # every forward would make the host wait for the GPU at every step.
    manifold.projection_radius = ball_radius(float(manifold.c))
    return manifold


def ball_radius(curvature: float) -> float:
    """The radius points are projected to: (1 - BALL_MARGIN) / sqrt(c)."""
    return (1.0 - BALL_MARGIN) / curvature**0.5


def clip_norm(vectors: torch.Tensor, radius: float) -> torch.Tensor:
    """Feature clipping: v * min(1, radius / |v|) along the last dimension (docs/method.md §2.2 embedding_clip)."""
    norms = vectors.norm(dim=-1, keepdim=True).clamp_min(_MIN_DENOMINATOR)
    return vectors * (radius / norms).clamp(max=1.0)


def expmap0(vectors: torch.Tensor, manifold: geoopt.PoincareBall) -> torch.Tensor:
    """geoopt's `manifold.expmap0(v, project=False)`, tanh(sqrt(c) |v|) v / (sqrt(c) |v|), with geoopt's
    operations in geoopt's order (the same values), but differentiated by eager autograd. geoopt's is a
    TorchScript function: the profiling executor differentiates its first call in a process op by op and
    every later call through TorchScript's autodiff (a DifferentiableGraph), whose gradient rounds
    differently, so a resumed run's first step (its process's first call) drifted from the same step of
    an uninterrupted run."""
    k_sqrt = (manifold.k.abs() + 1e-15).sqrt()  # geoopt's sabs(k).sqrt()
    norms = vectors.norm(dim=-1, p=2, keepdim=True).clamp_min(1e-15)
    return k_sqrt.reciprocal() * (norms * k_sqrt).clamp(-15, 15).tanh() * (vectors / norms)


def to_ball(vectors: torch.Tensor, manifold: geoopt.PoincareBall, *, clip: float | None = None) -> torch.Tensor:
    """proj(expmap0(v)) along the last dimension, outside autocast and in float32 at least.

    clip: the Euclidean norm v is clipped to first (None: no clipping, as the release)."""
    with torch.autocast(device_type=vectors.device.type, enabled=False):
        vectors = _full_precision(vectors)
        if clip is not None:
            vectors = clip_norm(vectors, clip)
        radius = getattr(manifold, "projection_radius", None) or ball_radius(float(manifold.c))
        return clip_norm(expmap0(vectors, manifold), radius)


def release_to_ball(vectors: torch.Tensor, curvature: float, *, clip: float | None = None) -> torch.Tensor:
    """The release's map into the ball, in its order of operations (model_hacm/transformer.py:15-27, 38-41):
    tanh(sqrt(c) |v|) v / (sqrt(c) |v|), then a point is rescaled to radius (1 - 1e-5) / sqrt(c) only if its
    norm reaches 1 / sqrt(c) (the release: 1, at c = 1). In float32 tanh rounds to 1 only for |v| above ~9,
    so points with norms in (1 - 1e-5, 1) stay where to_ball would clip them: their 1 - |x|^2, the
    denominator of the distance, is a few float32 steps, and the same operations give the same steps.
    clip: as to_ball's (hacm's option; the release has none)."""
    with torch.autocast(device_type=vectors.device.type, enabled=False):
        vectors = _full_precision(vectors)
        if clip is not None:
            vectors = clip_norm(vectors, clip)
        sqrt_c = torch.tensor(curvature, dtype=vectors.dtype, device=vectors.device).sqrt()
        norms = vectors.norm(dim=-1, keepdim=True)
        safe = torch.where(norms == 0, torch.ones_like(norms), norms)  # the release sets the scale of 0 to 1
        scale = torch.where(norms == 0, torch.ones_like(norms), torch.tanh(sqrt_c * safe) / (sqrt_c * safe))
        points = scale * vectors
        point_norms = points.norm(dim=-1, keepdim=True)
        outside = point_norms * sqrt_c >= 1
        radius = (1 - BALL_MARGIN) / curvature**0.5
        return torch.where(outside, radius / torch.where(outside, point_norms, torch.ones_like(point_norms)),
                           torch.ones_like(point_norms)) * points


def _arcosh1p(u: torch.Tensor) -> torch.Tensor:
    """arcosh(1 + u) for u >= 0, accurate for small u (no cancellation in 1 + u)."""
    return torch.log1p(u + torch.sqrt(u * (u + 2.0)))


def _squared_norms(points: torch.Tensor, release_form: bool) -> torch.Tensor:
    # The release squares the rounded norm (l.415-418) where hacm sums squares. Its projection leaves norms
    # up to 1 - 6e-8, whose 1 - |x|^2 is a few float32 steps: the two roundings differ there by up to ~100 %
    # of the distance's denominator, and its spatial scores by ~2 %.
    return points.norm(dim=-1).pow(2) if release_form else points.pow(2).sum(-1)


def _gap_factor(release_form: bool) -> float:
    return RELEASE_GAP_FACTOR if release_form else TEXTBOOK_GAP_FACTOR


def poincare_distance(x: torch.Tensor, y: torch.Tensor, curvature: float, *,
                      release_form: bool = False) -> torch.Tensor:
    """Distance between matching points of x and y (broadcast over leading dimensions). release_form: the
    release's hyperbolic_distance (model_hacm/transformer.py:411-420), 4 |x - y|^2 for 2 |x - y|^2."""
    with torch.autocast(device_type=x.device.type, enabled=False):
        x, y = _full_precision(x), _full_precision(y)
        squared_gap = (x - y).pow(2).sum(-1)
        scale_x = (1.0 - curvature * _squared_norms(x, release_form)).clamp_min(_MIN_DENOMINATOR)
        scale_y = (1.0 - curvature * _squared_norms(y, release_form)).clamp_min(_MIN_DENOMINATOR)
        ratio = _gap_factor(release_form) * curvature * squared_gap / (scale_x * scale_y)
        return _arcosh1p(ratio) / curvature**0.5


def _pairwise_squared_gaps(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., L, D) -> squared norms (..., L) and squared distances (..., L, L), from inner products."""
    squared_norms = points.pow(2).sum(-1)
    gram = points @ points.transpose(-1, -2)
    return squared_norms, (squared_norms[..., :, None] + squared_norms[..., None, :] - 2.0 * gram).clamp_min(0.0)


def poincare_pairwise_distance(points: torch.Tensor, curvature: float, *, release_form: bool = False) -> torch.Tensor:
    """(..., L, D) points -> (..., L, L) distances, from norms and inner products; exact zeros on the diagonal.
    release_form: the release's distance, as poincare_distance."""
    with torch.autocast(device_type=points.device.type, enabled=False):
        points = _full_precision(points)
        squared_norms, squared_gaps = _pairwise_squared_gaps(points)
        if release_form:
            squared_norms = _squared_norms(points, release_form)
        scales = (1.0 - curvature * squared_norms).clamp_min(_MIN_DENOMINATOR)
        ratio = _gap_factor(release_form) * curvature * squared_gaps / (scales[..., :, None] * scales[..., None, :])
        distances = _arcosh1p(ratio) / curvature**0.5
        return distances * (1.0 - torch.eye(points.shape[-2], device=points.device, dtype=points.dtype))


def euclidean_pairwise_distance(points: torch.Tensor) -> torch.Tensor:
    """(..., L, D) -> (..., L, L) Euclidean distances from norms and inner products (the flat ablation)."""
    with torch.autocast(device_type=points.device.type, enabled=False):
        points = _full_precision(points)
        _, squared = _pairwise_squared_gaps(points)
        return squared.sqrt() * (1.0 - torch.eye(points.shape[-2], device=points.device, dtype=points.dtype))
