"""Losses on tiny hand-computed cases; gradient flow; the loss falls on the synthetic data."""

from __future__ import annotations

import math

import pytest
import torch

from hacm.config import ConfigError
from hacm.model.config import ModelConfig, preset
from hacm.model.pretrainer import HACMPretrainer, masked_mse, normalise_tokens

SMALL = dict(dim=32, depth=1, heads=4, decoder_dim=32, decoder_depth=1, decoder_heads=4)


def test_reconstruction_loss_by_hand():
    prediction = torch.tensor([[[1.0, 2.0], [0.0, 0.0], [3.0, -1.0]]])
    target = torch.tensor([[[0.0, 0.0], [5.0, 5.0], [1.0, 1.0]]])
    masked = torch.tensor([[True, False, True]])
    # token 0: (1 + 4) / 2 = 2.5; token 2: (4 + 4) / 2 = 4; token 1 is visible and does not count
    assert masked_mse(prediction, target, masked).item() == pytest.approx((2.5 + 4.0) / 2)


def test_token_normalisation_by_hand():
    tokens = torch.tensor([[[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]]])
    normalised = normalise_tokens(tokens)
    scale = 1 / math.sqrt(1.0 + 1e-6)  # unbiased variance of (1, 2, 3) is 1
    torch.testing.assert_close(normalised[0, 0], torch.tensor([-scale, 0.0, scale]))
    torch.testing.assert_close(normalised[0, 1], torch.zeros(3))  # a constant token has no signal


def _softmax_rows(matrix):
    out = []
    for row in matrix:
        exps = [math.exp(v) for v in row]
        out.append([e / sum(exps) for e in exps])
    return out


def _mse_to_identity(left, right):
    n = len(left)
    similarity = _softmax_rows([[sum(a * b for a, b in zip(l, r)) for r in right] for l in left])
    return sum((similarity[i][j] - (i == j)) ** 2 for i in range(n) for j in range(n)) / n**2


def _contrast_by_hand(latent):
    """docs/method.md §2.8 on (S, 2, D) latents whose first token is the temporal group's, the second the spatial's."""
    h_t = [row[0] for row in latent]
    h_s = [row[1] for row in latent]
    h = [[(a + b) / 2 for a, b in zip(row[0], row[1])] for row in latent]
    return _mse_to_identity(h_t, h) + _mse_to_identity(h_s, h) + _mse_to_identity(h_t, h_s)


def test_cross_contrast_loss_by_hand():
    # Two sequences, two visible tokens each: the first from the temporal group, the second spatial.
    latent = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.5, 0.5], [2.0, 0.0]]])
    h_t = [[1.0, 0.0], [0.5, 0.5]]
    h_s = [[0.0, 1.0], [2.0, 0.0]]
    h = [[0.5, 0.5], [1.25, 0.25]]
    expected = _mse_to_identity(h_t, h) + _mse_to_identity(h_s, h) + _mse_to_identity(h_t, h_s)  # docs/method.md §2.8
    assert _contrast_by_hand(latent.tolist()) == pytest.approx(expected)
    model = HACMPretrainer(ModelConfig(**{**SMALL, "dim": 2, "heads": 1}))
    assert model.cross_contrast(latent, temporal_count=1).item() == pytest.approx(expected, rel=1e-6)


def test_cross_contrast_per_group_is_the_mean_over_consecutive_groups_by_hand():
    latent = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.5, 0.5], [2.0, 0.0]], [[-1.0, 0.3], [0.2, 0.8]],
                           [[0.0, -2.0], [1.5, 1.0]], [[0.7, 0.1], [-0.4, 0.9]], [[1.2, -0.6], [0.3, 0.3]]])
    rows = latent.tolist()
    by_hand = {2: sum(_contrast_by_hand(rows[i:i + 2]) for i in (0, 2, 4)) / 3,
               3: (_contrast_by_hand(rows[:3]) + _contrast_by_hand(rows[3:])) / 2,
               6: _contrast_by_hand(rows)}
    for group, expected in by_hand.items():
        model = HACMPretrainer(ModelConfig(**{**SMALL, "dim": 2, "heads": 1}, contrast_group=group))
        assert model.cross_contrast(latent, temporal_count=1).item() == pytest.approx(expected, rel=1e-6), group
    whole = HACMPretrainer(ModelConfig(**{**SMALL, "dim": 2, "heads": 1}))  # None: the whole batch, one group
    assert whole.cross_contrast(latent, temporal_count=1).item() == pytest.approx(by_hand[6], rel=1e-6)
    assert by_hand[2] != pytest.approx(by_hand[6], rel=1e-3)
    with pytest.raises(ConfigError, match="model.contrast_group: must divide the global batch of 6 sequences"):
        HACMPretrainer(ModelConfig(**{**SMALL, "dim": 2, "heads": 1}, contrast_group=4)).cross_contrast(latent, 1)


def test_contrast_group_is_validated():
    for bad in (1, 0, True, 2.5, "8"):
        with pytest.raises(ConfigError, match="model.contrast_group"):
            ModelConfig(contrast_group=bad)
    assert ModelConfig.from_dict({"contrast_group": "128"}).contrast_group == 128  # YAML text read as a number
    config = ModelConfig(contrast_group=128)
    config.check_global_batch(64 * 2 * 4)  # the release's 64 x 2 bodies per GPU, 4 GPUs
    with pytest.raises(ConfigError, match=r"model.contrast_group: must divide the global batch of 96 sequences "
                                          r"\(batch size x 2 bodies\) \(got 128\)"):
        config.check_global_batch(96)
    # ignored where L_cc is off (the w/o-L_cc ablations and the baselines keep a method-wide setting)
    preset("mamp", contrast_group=128).check_global_batch(96)
    ModelConfig(contrast_weight=0.0, contrast_group=128).check_global_batch(96)


@pytest.mark.parametrize("method", ["hacm", "mamp", "mae"])
def test_gradients_reach_every_trainable_parameter_but_not_the_selection_projections(method):
    torch.manual_seed(0)
    config = preset(method, **SMALL)
    model = HACMPretrainer(config)
    output = model(torch.randn(3, 3, config.frames, 25, 2), generator=torch.Generator().manual_seed(0))
    output.loss.backward()
    for name, parameter in model.named_parameters():
        if name in ("w_q", "w_k", "b_q", "b_k", "encoder.manifold.isp_c"):  # selection projections; fixed curvature
            assert not parameter.requires_grad and parameter.grad is None
        else:
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert "w_q" in model.state_dict() and "w_k" in model.state_dict()


def test_loss_falls_on_the_synthetic_data(synthetic_stores):
    """Fitting one batch of synthetic sequences (same masks each step): the reconstruction loss falls steadily.

    Motion is a millimetre-scale difference on metre-scale coordinates, so it is learnt slowly; over
    60 steps the loss measured here falls by about 8 %.
    """
    from hacm.data.loader import SkeletonDataset
    from hacm.data.storage import SkeletonStore

    torch.manual_seed(0)
    config = ModelConfig(frames=48, **{**SMALL, "dim": 64, "decoder_dim": 64, "depth": 2})
    model = HACMPretrainer(config)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-3)
    dataset = SkeletonDataset(SkeletonStore(synthetic_stores / "ntu60-xsub" / "train"), frames=48, train=True)
    batch = dataset.__getitems__(list(range(0, 64, 2)))
    losses = []
    for _ in range(60):
        output = model(batch.x, generator=torch.Generator().manual_seed(0))
        optimizer.zero_grad()
        output.loss.backward()
        optimizer.step()
        losses.append(output.reconstruction.item())
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.95 * first, f"reconstruction loss {first:.3f} -> {last:.3f}"
    assert all(later <= earlier + 0.01 for earlier, later in zip(losses, losses[10:]))  # no divergence
