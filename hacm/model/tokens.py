"""Tokens of a batch of body sequences: the patch layout and the embeddings every stage of the model shares."""

from __future__ import annotations

from dataclasses import dataclass

import torch


def patchify(sequences: torch.Tensor, t_patch: int) -> torch.Tensor:
    """(S, C, T, J) -> (S, P, J, t_patch * C), values of a token ordered (frame, coordinate)."""
    s, c, t, j = sequences.shape
    return sequences.reshape(s, c, t // t_patch, t_patch, j).permute(0, 2, 4, 3, 1).reshape(s, t // t_patch, j, -1)

@dataclass
class TokenSet:
    """The embeddings of a batch of sequences."""

    euclidean: torch.Tensor  # (S, P, J, D) with position embeddings
    points: torch.Tensor  # (S, P, J, D) what the encoder consumes: in the ball when hyperbolic
    trunk: torch.Tensor  # (S, P, T, D) trunk-joint embeddings without position embeddings
