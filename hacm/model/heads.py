"""Classification heads on the encoder's token features (docs/method.md §3).

Both take encoder features (N, M, P, J, D): N samples, M bodies, P time patches, J token joints.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from hacm.model.transformer import init_weights


def pooled(features: torch.Tensor) -> torch.Tensor:
    """Mean over bodies, time and joints: (N, M, P, J, D) -> (N, D)."""
    return features.mean(dim=(1, 2, 3))


@torch.no_grad()
def pooled_features(encoder: nn.Module, batches: Iterable, *, device: torch.device,
                    autocast_dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled features (every token visible, the encoder in eval mode) of batches with `.x` and `.labels`,
    and their labels, on the CPU: what the kNN monitor and the linear probe read."""
    was_training = encoder.training
    encoder.eval()
    features, labels = [], []
    for batch in batches:
        x = batch.x.to(device, non_blocking=True)
        with torch.autocast(device_type=device.type, dtype=autocast_dtype or torch.bfloat16,
                            enabled=autocast_dtype is not None):
            tokens = encoder(x)
        features.append(pooled(tokens.float()).cpu())
        labels.append(batch.labels.cpu())
    encoder.train(was_training)
    return torch.cat(features), torch.cat(labels)


class LinearHead(nn.Module):
    """BatchNorm without affine parameters (eps 1e-6), then one Linear layer, on pooled features
    (the release's main_linprobe.py: BatchNorm1d(affine=False, eps=1e-6), fc trunc-normal 0.01 as MoCo v3)."""

    def __init__(self, dim: int, classes: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(dim, affine=False, eps=1e-6)
        self.linear = nn.Linear(dim, classes)
        nn.init.trunc_normal_(self.linear.weight, std=0.01)
        nn.init.zeros_(self.linear.bias)

    def forward(self, pooled_features: torch.Tensor) -> torch.Tensor:
        return self.linear(self.norm(pooled_features))


class FinetuneHead(nn.Module):
    """Dropout, mean over time, joints concatenated, mean over bodies, Linear-BatchNorm-ReLU-Linear."""

    def __init__(self, *, dim: int, joints: int, classes: int, hidden: int = 2048, dropout: float = 0.3) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.mlp = nn.Sequential(nn.Linear(joints * dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, classes))
        self.mlp.apply(init_weights)  # xavier-uniform, as the release's model/transformer.py initialises its head

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        n, m, p, j, d = features.shape
        x = self.dropout(features).mean(dim=2).reshape(n, m, j * d).mean(dim=1)
        return self.mlp(x)
