"""The rows every method has: the weights copied through the key map, and the encoder's features against the
authors' evaluation model (every token visible, as the linear probe and fine-tuning see it)."""

from __future__ import annotations

import torch
from torch import nn

from hacm.model.pretrainer import SkeletonEncoder
from hacm.release.pairs import WeightCopy
from hacm.release.rows import Row, compared

# What the authors' main_linprobe.py asserts when it loads a pretraining checkpoint into the evaluation model.
EVALUATION_MISSING = {"head.fc.weight", "head.fc.bias"}


def weights_row(method: str, copy: WeightCopy) -> Row:
    dropped = f"; {len(copy.dropped)} dropped (never read by its forward)" if copy.dropped else ""
    if copy.problems:
        return Row(method, "weights through the key map", float("inf"), 0.0, "; ".join(copy.problems))
    return Row(method, "weights through the key map", copy.max_difference, 0.0,
               f"{copy.renamed} keys copied{dropped}")


def evaluation_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(S, L, D): the output of the evaluation model's final LayerNorm `norm`, before its action head."""
    captured = []
    handle = model.norm.register_forward_hook(lambda module, inputs, output: captured.append(output))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return captured[0]


def features_row(method: str, evaluation_model: nn.Module, state: dict, encoder: SkeletonEncoder,
                 x: torch.Tensor) -> Row:
    """The authors' evaluation model, loaded with the pretraining `state` as their main_linprobe.py loads it,
    against hacm's SkeletonEncoder on the same input."""
    quantity = "encoder features (evaluation model)"
    missing = set(evaluation_model.load_state_dict(state, strict=False).missing_keys)
    if missing != EVALUATION_MISSING:
        return Row(method, quantity, float("inf"), 0.0,
                   f"their evaluation model lacks {sorted(missing - EVALUATION_MISSING)[:3]} of the pretraining state")
    evaluation_model.eval()
    theirs = evaluation_features(evaluation_model, x)
    with torch.no_grad():
        ours = encoder.eval()(x)
    ours = ours.reshape(theirs.shape) if ours.numel() == theirs.numel() else ours
    return compared(method, quantity, theirs, ours, detail=f"{tuple(theirs.shape)}, max |x| {theirs.abs().max():.2f}")
