"""Poincaré-ball geometry: closed-form distances against geoopt and high precision; metric properties."""

from __future__ import annotations

import mpmath
import pytest
import torch

from hacm.model.hyperbolic import ball, expmap0, poincare_distance, poincare_pairwise_distance, to_ball


def interior_points(count: int, dim: int, curvature: float, *, seed: int, radius: float = 0.6) -> torch.Tensor:
    """Points well inside the ball (norm up to radius / sqrt(c)), float64."""
    generator = torch.Generator().manual_seed(seed)
    directions = torch.nn.functional.normalize(torch.randn(count, dim, generator=generator, dtype=torch.float64), dim=1)
    radii = torch.rand(count, 1, generator=generator, dtype=torch.float64) * radius / curvature**0.5
    return directions * radii


@pytest.mark.parametrize("curvature", [0.5, 1.0, 2.0])
def test_closed_form_pairwise_distance_equals_geoopt(curvature):
    points = interior_points(40, 16, curvature, seed=1)
    ours = poincare_pairwise_distance(points, curvature)
    reference = ball(curvature).dist(points[:, None, :], points[None, :, :])
    torch.testing.assert_close(ours, reference, atol=1e-6, rtol=0)


@pytest.mark.parametrize("curvature", [0.5, 1.0, 2.0])
def test_distance_is_a_metric(curvature):
    points = interior_points(30, 8, curvature, seed=2, radius=0.95)
    distances = poincare_pairwise_distance(points, curvature)
    torch.testing.assert_close(distances, distances.t(), atol=1e-12, rtol=0)
    assert torch.all(distances.diagonal() == 0)
    assert torch.all(distances[~torch.eye(30, dtype=torch.bool)] > 0)
    triangle = distances[:, None, :] <= distances[:, :, None] + distances[None, :, :] + 1e-9  # d(i,k) <= d(i,j)+d(j,k)
    assert triangle.all()


def test_exponential_and_logarithmic_maps_round_trip():
    manifold = ball(1.0)
    vectors = torch.randn(50, 12, dtype=torch.float64) * 0.5
    torch.testing.assert_close(manifold.logmap0(to_ball(vectors, manifold)), vectors, atol=1e-9, rtol=1e-9)


def test_finite_and_accurate_at_the_ball_edge():
    """Projected points sit at the edge; geoopt's artanh clamps there, the closed form stays exact."""
    curvature = 2.0
    manifold = ball(curvature)
    points = to_ball(torch.randn(2, 16, dtype=torch.float64) * 5, manifold)
    edge = torch.full((2,), (1 - 1e-5) / curvature**0.5, dtype=torch.float64)  # geoopt float64 margin
    assert torch.allclose(points.norm(dim=1), edge, atol=1e-8)
    ours = poincare_distance(points[0], points[1], curvature)
    mpmath.mp.dps = 50
    x, y = ([mpmath.mpf(float(v)) for v in p] for p in points)
    gap = mpmath.fsum((a - b) ** 2 for a, b in zip(x, y))
    nx, ny = mpmath.fsum(a * a for a in x), mpmath.fsum(b * b for b in y)
    exact = mpmath.acosh(1 + 2 * curvature * gap / ((1 - curvature * nx) * (1 - curvature * ny))) / mpmath.sqrt(curvature)
    assert abs(float(ours) - float(exact)) < 1e-9 * float(exact)
    float32 = to_ball(torch.randn(64, 256) * 10, ball(1.0))
    assert torch.isfinite(poincare_pairwise_distance(float32, 1.0)).all()


def test_mapping_and_distances_stay_float32_under_autocast():
    with torch.autocast("cpu", dtype=torch.bfloat16):
        points = to_ball(torch.randn(4, 18, 32), ball(1.0))
        distances = poincare_pairwise_distance(points.bfloat16(), 1.0)
    assert points.dtype == torch.float32 and distances.dtype == torch.float32


@pytest.mark.parametrize("curvature", [0.5, 1.0, 2.0])
def test_expmap0_is_geoopts_and_its_gradient_does_not_depend_on_earlier_calls(curvature):
    """geoopt's expmap0 is a TorchScript function whose gradient, after its first call in a process, comes
    from TorchScript's autodiff and rounds differently: a resumed run then drifted from a straight one.
    hyperbolic.expmap0 gives geoopt's values bit for bit, and the same gradient at every call."""
    manifold = ball(curvature)
    vectors = torch.randn(64, 18, 32, generator=torch.Generator().manual_seed(0)) * 3
    weights = torch.randn(64, 18, 32, generator=torch.Generator().manual_seed(1))
    assert torch.equal(expmap0(vectors, manifold), manifold.expmap0(vectors, project=False))
    gradients = []
    for _ in range(3):
        leaf = vectors.clone().requires_grad_()
        (expmap0(leaf, manifold) * weights).sum().backward()
        gradients.append(leaf.grad)
    assert all(torch.equal(gradient, gradients[0]) for gradient in gradients[1:])
