"""The score function of each masking criterion of hacm.model.criteria, registered under its name.

A score function takes the model, its body sequences (S, C, T, V), their embeddings and the time patches of
a masking group, and returns the scores (S, len(patch_ids), J) of that group's tokens. The selection
(scaling, Gumbel noise, top-K) is the same for every criterion (hacm.model.masking).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from hacm.model.masking import motion_scores, spatial_hierarchy_scores, temporal_attention_scores
from hacm.model.tokens import TokenSet, patchify

if TYPE_CHECKING:
    from hacm.model.pretrainer import HACMPretrainer

ScoreFunction = Callable[["HACMPretrainer", torch.Tensor, TokenSet, torch.Tensor], torch.Tensor]
SCORES: dict[str, ScoreFunction] = {}


def scores_of(name: str) -> Callable[[ScoreFunction], ScoreFunction]:
    """Registers the decorated function as the score function of criterion `name`."""
    def register(function: ScoreFunction) -> ScoreFunction:
        SCORES[name] = function
        return function
    return register


@scores_of("attention")
def attention(model: HACMPretrainer, sequences: torch.Tensor, tokens: TokenSet, patch_ids: torch.Tensor) -> torch.Tensor:
    return temporal_attention_scores(tokens.euclidean[:, patch_ids], model.w_q, model.w_k, model.b_q, model.b_k)


@scores_of("hierarchy")
def hierarchy(model: HACMPretrainer, sequences: torch.Tensor, tokens: TokenSet, patch_ids: torch.Tensor) -> torch.Tensor:
    config = model.config
    parents = model.encoder.to_points(tokens.trunk[:, patch_ids]).float().mean(dim=2)
    return spatial_hierarchy_scores(tokens.points[:, patch_ids], parents, curvature=config.curvature,
                                    parent_weight=config.parent_weight, hyperbolic=config.hyperbolic,
                                    release_form=config.release_objective)


@scores_of("motion")
def motion(model: HACMPretrainer, sequences: torch.Tensor, tokens: TokenSet, patch_ids: torch.Tensor) -> torch.Tensor:
    patches = patchify(sequences[:, :, :, model.encoder.token_joints].float(), model.config.t_patch)
    return motion_scores(patches)[:, patch_ids]


@scores_of("random")
def random(model: HACMPretrainer, sequences: torch.Tensor, tokens: TokenSet, patch_ids: torch.Tensor) -> torch.Tensor:
    """Equal scores: the Gumbel noise alone decides."""
    return tokens.euclidean.new_zeros(tokens.euclidean.shape[0], len(patch_ids), model.config.joints_per_patch)
