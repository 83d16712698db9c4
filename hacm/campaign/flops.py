"""Floating-point operations per sample of the model's passes, counted from its configuration.

The model of the count (one multiply-add = 2 FLOPs; a sample is `num_bodies` sequences, each its own
token set, as `hacm.model.pretrainer.to_sequences` feeds them):

- tokens: L = (frames // t_patch) time patches x J token joints (HA-CM: the 18 limb joints; MAE / MAMP:
  all 25). Pretraining shows the encoder K visible tokens: K = floor((1 - r) L_g) per masking group
  (`ModelConfig.visible_per_group`), the two groups of cross masking being the even and the odd patches.
- a transformer block on n tokens of width d (MLP hidden h = int(mlp_ratio d)): 2 n (4 d^2 + 2 d h) for
  the q/k/v, output and MLP projections, and 4 n^2 d for the attention (q k^T and the weighted sum of v),
  which is what makes attention quadratic in the tokens.
- the patch embedding: every joint of every patch (the convolution runs before the token joints are
  picked), 2 x joints x patches x coords x t_patch x D.
- pretraining forward: embedding, the encoder (depth blocks on K tokens), decoder_embed (K x D x D_dec),
  the decoder (decoder_depth blocks on all L tokens), the prediction head (L x D_dec x t_patch x coords),
  and HA-CM's attention criterion, whose two projections of the temporal group's tokens run without
  gradient. Forward + backward = 3 x forward for everything that has a gradient, 2 x for the embedding
  (its input, the skeleton, needs no gradient).
- evaluation: the encoder on all L tokens (the linear probe's and the kNN monitor's forward passes),
  3 x that (2 x for the embedding) for a fine-tuning step. The classification heads (under 0.2 % at the
  paper's size) are left out, as are the hierarchy criterion's pairwise distances and the cross-contrast
  similarities (under 0.1 % at the paper's size, about 1.5 % at a width of 16).

Checked against `torch.utils.flop_counter` on hacm's own model, whose count leaves out the fused attention
kernel (tests/test_campaign_cost.py; at the paper's sizes within 0.05 %), and against the 305.6 GFLOP per
batch-16 step that `hacm.bench` cites for the authors' implementation at T 72 (19.10 GFLOP a sample; this
count: 19.10). Torch-free.
"""

from __future__ import annotations

from hacm.model.config import ModelConfig
from hacm.model.criteria import CRITERIA


def block_flops(tokens: int, width: int, mlp_ratio: float) -> float:
    """One pre-norm transformer block's forward on `tokens` tokens of `width` (norms and softmax left out)."""
    hidden = int(width * mlp_ratio)
    return 2 * tokens * (4 * width * width + 2 * width * hidden) + 4 * tokens * tokens * width


def visible_tokens(model: ModelConfig) -> int:
    """The encoder's tokens per sequence during pretraining: the visible ones of each masking group."""
    if model.masking != "cross":
        return model.visible_per_group(model.tokens)
    temporal = (model.patches + 1) // 2 * model.joints_per_patch  # even patches
    spatial = model.patches // 2 * model.joints_per_patch
    return model.visible_per_group(temporal) + model.visible_per_group(spatial)


def embedding_flops(model: ModelConfig) -> float:
    """The patch embedding of one sequence: a Conv2d over every joint of every time patch."""
    return 2.0 * model.num_joints * model.patches * model.coords * model.t_patch * model.dim


def encoder_blocks_flops(model: ModelConfig, tokens: int) -> float:
    """The encoder's blocks on `tokens` tokens, one sequence."""
    return model.depth * block_flops(tokens, model.dim, model.mlp_ratio)


def masking_flops(model: ModelConfig) -> float:
    """The q and k projections of the groups whose criterion runs them (hacm.model.criteria: the attention
    criterion, no gradient), one sequence."""
    sizes = {"temporal": (model.patches + 1) // 2 * model.joints_per_patch,
             "spatial": model.patches // 2 * model.joints_per_patch, "all": model.tokens}
    return sum((2 * 2.0 * sizes[group] * model.dim * model.dim
                for group, criterion in model.masking_groups if CRITERIA[criterion].projections), 0.0)


def pretrain_step_flops(model: ModelConfig) -> float:
    """Forward + backward of one pretraining sample (all its bodies)."""
    visible = visible_tokens(model)
    with_gradient = (encoder_blocks_flops(model, visible)
                     + 2.0 * visible * model.dim * model.decoder_dim
                     + model.decoder_depth * block_flops(model.tokens, model.decoder_dim, model.mlp_ratio)
                     + 2.0 * model.tokens * model.decoder_dim * model.t_patch * model.coords)
    return model.num_bodies * (3 * with_gradient + 2 * embedding_flops(model) + masking_flops(model))


def encoder_forward_flops(model: ModelConfig) -> float:
    """The encoder's forward on every token of one sample: a linear-probe or kNN feature, a test score."""
    return model.num_bodies * (embedding_flops(model) + encoder_blocks_flops(model, model.tokens))


def finetune_step_flops(model: ModelConfig) -> float:
    """Forward + backward of the encoder on every token of one sample (fine-tuning)."""
    return model.num_bodies * (2 * embedding_flops(model) + 3 * encoder_blocks_flops(model, model.tokens))
