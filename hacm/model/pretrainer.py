"""HA-CM pretraining model (DESIGN §2): the encoder, its masking and its losses in one module.

`HACMPretrainer.forward(x, generator=...)` returns the losses of a batch; `SkeletonEncoder` is the part
kept for evaluation (every token visible). MAE and MAMP are the same module under other configs.

Token order everywhere: natural index n = patch * J + joint. The encoder sees the visible tokens of
the temporal group (ascending n) followed by those of the spatial group (ascending n); the decoder
scatters them back to their natural positions, and targets are cut in the same natural order.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from hacm.model.config import ModelConfig
from hacm.model.hyperbolic import ball, to_ball
from hacm.model.masking import motion_scores, select_visible, spatial_hierarchy_scores, temporal_attention_scores
from hacm.model.transformer import Transformer, init_weights

_TARGET_EPS = 1e-6


def to_sequences(x: torch.Tensor) -> torch.Tensor:
    """(N, C, T, V, M) batch -> (N*M, C, T, V): each body is a sequence (sample-major, body-minor)."""
    n, c, t, v, m = x.shape
    return x.permute(0, 4, 1, 2, 3).reshape(n * m, c, t, v)


def patchify(sequences: torch.Tensor, t_patch: int) -> torch.Tensor:
    """(S, C, T, J) -> (S, P, J, t_patch * C), values of a token ordered (frame, coordinate)."""
    s, c, t, j = sequences.shape
    return sequences.reshape(s, c, t // t_patch, t_patch, j).permute(0, 2, 4, 3, 1).reshape(s, t // t_patch, j, -1)


def gather_tokens(tokens: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
    """(S, L, D) tokens, (S, K) natural indices -> (S, K, D) the visible tokens in that order."""
    return torch.gather(tokens, 1, visible[:, :, None].expand(-1, -1, tokens.shape[-1]))


def restore_tokens(visible_tokens: torch.Tensor, visible: torch.Tensor, fill: torch.Tensor, length: int) -> torch.Tensor:
    """(S, K, D) tokens at natural indices `visible` -> (S, L, D) in natural order, `fill` elsewhere."""
    full = fill.expand(visible_tokens.shape[0], length, visible_tokens.shape[-1]).clone()
    return full.scatter(1, visible[:, :, None].expand(-1, -1, visible_tokens.shape[-1]), visible_tokens)


def normalise_tokens(tokens: torch.Tensor) -> torch.Tensor:
    """Each token minus its mean, over sqrt(its unbiased variance + 1e-6) (MAE's normalised target)."""
    mean = tokens.mean(dim=-1, keepdim=True)
    variance = tokens.var(dim=-1, keepdim=True)
    return (tokens - mean) / (variance + _TARGET_EPS).sqrt()


def masked_mse(prediction: torch.Tensor, target: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
    """Mean over masked tokens of the per-token mean squared error."""
    per_token = (prediction - target).pow(2).mean(dim=-1)
    return (per_token * masked).sum() / masked.sum().clamp_min(1)


@dataclass
class TokenSet:
    """The embeddings of a batch of sequences."""

    euclidean: torch.Tensor  # (S, P, J, D) with position embeddings
    points: torch.Tensor  # (S, P, J, D) what the encoder consumes: in the ball when hyperbolic
    trunk: torch.Tensor  # (S, P, T, D) trunk-joint embeddings without position embeddings


class SkeletonEncoder(nn.Module):
    """Token embedding, optional Poincaré-ball mapping and the transformer encoder."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.register_buffer("token_joints", torch.tensor(config.token_joint_ids), persistent=False)
        self.register_buffer("trunk_joints", torch.tensor(config.trunk_joints), persistent=False)
        self.patch_embed = nn.Conv2d(config.coords, config.dim, kernel_size=(config.t_patch, 1),
                                     stride=(config.t_patch, 1))
        self.joint_embed = nn.Parameter(torch.zeros(1, 1, config.joints_per_patch, config.dim))
        self.time_embed = nn.Parameter(torch.zeros(1, config.patches, 1, config.dim))
        self.manifold = ball(config.curvature) if config.hyperbolic else None
        self.transformer = Transformer(dim=config.dim, depth=config.depth, heads=config.heads,
                                       mlp_ratio=config.mlp_ratio, drop_path=config.drop_path)
        nn.init.trunc_normal_(self.joint_embed, std=0.02)
        nn.init.trunc_normal_(self.time_embed, std=0.02)
        self.transformer.apply(init_weights)

    def embed(self, sequences: torch.Tensor) -> TokenSet:
        """(S, C, T, V) -> embeddings of the token joints (and of the trunk, for the hierarchy)."""
        # Channels last, in memory too: the convolution writes D outermost, and every reduction over D
        # (the ball's norms, LayerNorm) would otherwise stride through memory (~7x slower to_ball).
        features = self.patch_embed(sequences).permute(0, 2, 3, 1).contiguous()  # (S, P, V, D)
        euclidean = features[:, :, self.token_joints] + self.joint_embed + self.time_embed
        points = self.to_points(euclidean)
        return TokenSet(euclidean=euclidean, points=points, trunk=features[:, :, self.trunk_joints])

    def to_points(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Embeddings as the encoder consumes them: in the ball (after the optional clipping) when hyperbolic."""
        if self.manifold is None:
            return embeddings
        return to_ball(embeddings, self.manifold, clip=self.config.embedding_clip)

    def encode_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """(S, K, D) token points -> (S, K, D) encoder outputs."""
        return self.transformer(tokens)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Every token visible: (N, C, T, V, M) -> features (N, M, P, J, D)."""
        n, m = x.shape[0], x.shape[-1]
        tokens = self.embed(to_sequences(x)).points
        s, p, j, d = tokens.shape
        return self.encode_tokens(tokens.reshape(s, p * j, d)).reshape(n, m, p, j, d)


@dataclass
class MaskPlan:
    visible: torch.Tensor  # (S, K) natural indices: temporal group's first, then the spatial group's
    temporal_count: int  # how many of the K come from the temporal group (0 without cross grouping)
    masked: torch.Tensor  # (S, L) True where masked


@dataclass
class GroupScores:
    group: str  # temporal | spatial (cross masking) | all (one group)
    criterion: str  # attention | hierarchy | motion | random
    members: torch.Tensor  # (L_group,) natural indices of the group's tokens
    scores: torch.Tensor  # (S, L_group) float32
    visible_count: int  # K = floor((1 - r) L_group)


@dataclass
class PretrainOutput:
    loss: torch.Tensor
    reconstruction: torch.Tensor
    contrast: torch.Tensor
    plan: MaskPlan
    prediction: torch.Tensor  # (S, L, t_patch * C)
    target: torch.Tensor  # (S, L, t_patch * C)


def draw_uniforms(
    generator: torch.Generator | None, shape: tuple[int, ...], *, offset: int, total: int | None, device: torch.device
) -> torch.Tensor:
    """Uniforms for `shape[0]` sequences starting at `offset` of a global batch of `total`.

    Every process of a data-parallel job draws the whole global batch's noise from an identically
    seeded generator and keeps its slice, so masks do not depend on how the batch is split.
    """
    total = shape[0] if total is None else total
    generator_device = generator.device if generator is not None else device
    full = torch.rand((total, *shape[1:]), generator=generator, device=generator_device)
    return full[offset : offset + shape[0]].to(device)


class HACMPretrainer(nn.Module):
    """Masked motion reconstruction with hierarchy / attention guided cross masking and cross-contrast."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = SkeletonEncoder(config)
        # The temporal criterion's projections (the release's l1 / l2: Linear D->D, xavier-uniform, zero
        # bias) select tokens, a discrete choice: no gradient reaches them, they keep their initial values
        # and travel with the checkpoint.
        self.w_q = nn.Parameter(torch.empty(config.dim, config.dim), requires_grad=False)
        self.w_k = nn.Parameter(torch.empty(config.dim, config.dim), requires_grad=False)
        self.b_q = nn.Parameter(torch.zeros(config.dim), requires_grad=False)
        self.b_k = nn.Parameter(torch.zeros(config.dim), requires_grad=False)
        nn.init.xavier_uniform_(self.w_q)
        nn.init.xavier_uniform_(self.w_k)
        self.decoder_embed = nn.Linear(config.dim, config.decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, config.decoder_dim))
        self.decoder_joint_embed = nn.Parameter(torch.zeros(1, 1, config.joints_per_patch, config.decoder_dim))
        self.decoder_time_embed = nn.Parameter(torch.zeros(1, config.patches, 1, config.decoder_dim))
        self.decoder = Transformer(dim=config.decoder_dim, depth=config.decoder_depth, heads=config.decoder_heads,
                                   mlp_ratio=config.mlp_ratio)
        self.head = nn.Linear(config.decoder_dim, config.t_patch * config.coords)
        for parameter in (self.mask_token, self.decoder_joint_embed, self.decoder_time_embed):
            nn.init.trunc_normal_(parameter, std=0.02)
        for module in (self.decoder_embed, self.decoder, self.head):
            module.apply(init_weights)
        patches = torch.arange(config.patches).repeat_interleave(config.joints_per_patch)
        self.register_buffer("temporal_group", torch.nonzero(patches % 2 == 0).squeeze(1), persistent=False)
        self.register_buffer("spatial_group", torch.nonzero(patches % 2 == 1).squeeze(1), persistent=False)

    def compile_transformers(self) -> None:
        """torch.compile the encoder's and the decoder's transformer stacks in place (state_dict keys stay
        as they are, so checkpoints do not depend on it). Where compiling fails (no C++ compiler, an
        unsupported backend) the stacks run eagerly, with torch's warning: dynamo's suppress_errors is
        process-wide, which suits a process that trains one model."""
        import torch._dynamo

        torch._dynamo.config.suppress_errors = True
        self.encoder.transformer.compile()
        self.decoder.compile()

    # --- masking -----------------------------------------------------------------------------
    def _criterion_scores(self, criterion: str, tokens: TokenSet, patch_ids: torch.Tensor) -> torch.Tensor:
        """(S, len(patch_ids) * J) scores of the tokens of the given time patches, natural order."""
        config = self.config
        if criterion == "attention":
            scores = temporal_attention_scores(tokens.euclidean[:, patch_ids], self.w_q, self.w_k, self.b_q, self.b_k)
        elif criterion == "hierarchy":
            trunk = tokens.trunk[:, patch_ids]
            parents = self.encoder.to_points(trunk).float().mean(dim=2)
            scores = spatial_hierarchy_scores(tokens.points[:, patch_ids], parents, curvature=config.curvature,
                                              parent_weight=config.parent_weight, hyperbolic=config.hyperbolic)
        else:  # random: equal scores, so the Gumbel noise alone decides
            scores = tokens.euclidean.new_zeros(tokens.euclidean.shape[0], len(patch_ids), config.joints_per_patch)
        return scores.reshape(scores.shape[0], -1).float()

    @torch.no_grad()
    def group_scores(self, sequences: torch.Tensor, tokens: TokenSet) -> list[GroupScores]:
        """Each masking group's members (natural indices), scores (S, L_group) and visible count."""
        config = self.config
        all_patches = torch.arange(config.patches, device=sequences.device)
        if config.masking == "cross":
            groups = [("temporal", config.temporal_criterion, self.temporal_group, all_patches[0::2]),
                      ("spatial", config.spatial_criterion, self.spatial_group, all_patches[1::2])]
        else:
            natural = torch.arange(config.tokens, device=sequences.device)
            criterion = config.single_criterion if config.masking == "single" else config.masking
            groups = [("all", criterion, natural, all_patches)]
        result = []
        for name, criterion, members, patch_ids in groups:
            if criterion == "motion":
                patches = patchify(sequences[:, :, :, self.encoder.token_joints].float(), config.t_patch)
                scores = motion_scores(patches).reshape(sequences.shape[0], -1)
            else:
                scores = self._criterion_scores(criterion, tokens, patch_ids)
            result.append(GroupScores(group=name, criterion=criterion, members=members, scores=scores,
                                      visible_count=config.visible_per_group(scores.shape[1])))
        return result

    @torch.no_grad()
    def plan_masks(
        self,
        sequences: torch.Tensor,
        tokens: TokenSet,
        *,
        generator: torch.Generator | None,
        offset: int = 0,
        total: int | None = None,
    ) -> MaskPlan:
        config = self.config
        count, device = sequences.shape[0], sequences.device
        chosen, temporal_count = [], 0
        for index, group in enumerate(self.group_scores(sequences, tokens)):
            uniforms = draw_uniforms(generator, tuple(group.scores.shape), offset=offset, total=total, device=device)
            local = select_visible(group.scores, uniforms, group.visible_count, temperature=config.score_temperature,
                                   keep_high=config.keep_high_scores, scaling=config.score_scaling)
            chosen.append(group.members[local])
            if config.masking == "cross" and index == 0:
                temporal_count = group.visible_count
        visible = torch.cat(chosen, dim=1)
        masked = torch.ones(count, config.tokens, dtype=torch.bool, device=device)
        masked.scatter_(1, visible, False)
        return MaskPlan(visible=visible, temporal_count=temporal_count, masked=masked)

    # --- decoder, targets, losses -----------------------------------------------------------------
    def decode(self, latent: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """(S, K, D) encoder outputs at `visible` -> (S, L, t_patch * C) predictions for every token."""
        visible_tokens = self.decoder_embed(latent)
        full = restore_tokens(visible_tokens, visible, self.mask_token.to(visible_tokens.dtype), self.config.tokens)
        positions = (self.decoder_joint_embed + self.decoder_time_embed).reshape(1, self.config.tokens, -1)
        return self.head(self.decoder(full + positions))

    def raw_target(self, sequences: torch.Tensor) -> torch.Tensor:
        """(S, C, T, V) -> (S, L, t_patch * C): motion (or coordinates), in the ball when hyperbolic."""
        config = self.config
        joints = sequences[:, :, :, self.encoder.token_joints].float()
        if config.target == "motion":
            motion = torch.zeros_like(joints)
            motion[:, :, :-1] = joints[:, :, 1:] - joints[:, :, :-1]
            joints = motion
        if config.hyperbolic:  # joint by joint: each 3-D vector into the ball (coordinates contiguous: ~20x faster norms)
            joints = to_ball(joints.transpose(1, 3).contiguous(), self.encoder.manifold).transpose(1, 3)
        return patchify(joints, config.t_patch).reshape(joints.shape[0], config.tokens, -1)

    def reconstruction_target(self, sequences: torch.Tensor) -> torch.Tensor:
        return normalise_tokens(self.raw_target(sequences))

    def cross_contrast(self, latent: torch.Tensor, temporal_count: int) -> torch.Tensor:
        """MSE(softmax(h_T h^T), I) + MSE(softmax(h_S h^T), I) + MSE(softmax(h_T h_S^T), I) over the (global) batch
        (DESIGN §2.8; the release's similarity_matrix_inter puts the temporal group's mean on the rows)."""
        latent = latent.float()
        h_temporal = latent[:, :temporal_count].mean(dim=1)
        h_spatial = latent[:, temporal_count:].mean(dim=1)
        h_all = latent.mean(dim=1)
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            from torch.distributed.nn.functional import all_gather

            h_temporal, h_spatial, h_all = (torch.cat(all_gather(h), dim=0) for h in (h_temporal, h_spatial, h_all))
        identity = torch.eye(h_all.shape[0], device=latent.device)
        total = latent.new_zeros(())
        for left, right in ((h_temporal, h_all), (h_spatial, h_all), (h_temporal, h_spatial)):
            similarity = (left @ right.t()).softmax(dim=1)
            total = total + (similarity - identity).pow(2).mean()
        return total

    def forward(
        self,
        x: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        sequence_offset: int = 0,
        total_sequences: int | None = None,
    ) -> PretrainOutput:
        """x: (N, C, T, V, M). sequence_offset / total_sequences place this batch in a global one (DDP)."""
        config = self.config
        sequences = to_sequences(x)
        tokens = self.encoder.embed(sequences)
        plan = self.plan_masks(sequences, tokens, generator=generator, offset=sequence_offset, total=total_sequences)
        points = tokens.points.reshape(sequences.shape[0], config.tokens, config.dim)
        latent = self.encoder.encode_tokens(gather_tokens(points, plan.visible))
        prediction = self.decode(latent, plan.visible).float()
        target = self.reconstruction_target(sequences)
        reconstruction = masked_mse(prediction, target, plan.masked)
        contrast = latent.new_zeros((), dtype=torch.float32)
        if config.contrast_weight > 0:
            contrast = self.cross_contrast(latent, plan.temporal_count)
        loss = reconstruction + config.contrast_weight * contrast
        return PretrainOutput(loss=loss, reconstruction=reconstruction, contrast=contrast, plan=plan,
                              prediction=prediction, target=target)
