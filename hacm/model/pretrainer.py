"""HA-CM pretraining model (docs/method.md §2): the encoder, its masking and its losses in one module.

`HACMPretrainer.forward(x, generator=...)` returns the losses of a batch; `SkeletonEncoder` is the part
kept for evaluation (every token visible). MAE and MAMP are the same module under other configs.

Token order everywhere: natural index n = patch * J + joint. The encoder sees the visible tokens of
the temporal group (ascending n) followed by those of the spatial group (ascending n); the decoder
scatters them back to their natural positions, and targets are cut in the same natural order.
`ModelConfig.release_objective` computes the release's objective instead, whose orders
hacm.model.release_objective describes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from hacm.config import ConfigError
from hacm.model import release_objective as release
from hacm.model.config import ModelConfig
from hacm.model.gather import gather_rows
from hacm.model.hyperbolic import ball, release_to_ball, to_ball
from hacm.model.criterion_scores import SCORES
from hacm.model.masking import gumbel_selection_keys, largest_keys, masked_from_kept
from hacm.model.tokens import TokenSet, patchify
from hacm.model.transformer import Transformer, init_weights

_TARGET_EPS = 1e-6


def to_sequences(x: torch.Tensor) -> torch.Tensor:
    """(N, C, T, V, M) batch -> (N*M, C, T, V): each body is a sequence (sample-major, body-minor)."""
    n, c, t, v, m = x.shape
    return x.permute(0, 4, 1, 2, 3).reshape(n * m, c, t, v)


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
        if self.config.release_objective:
            return release_to_ball(embeddings, self.config.curvature, clip=self.config.embedding_clip)
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
    # Where the decoder puts each encoded token, and where the loss counts, in the decoder's order: the natural
    # order (visible, masked), or the release's layout under release_objective.
    slots: torch.Tensor  # (S, K)
    loss_mask: torch.Tensor  # (S, L)


@dataclass
class GroupScores:
    group: str  # temporal | spatial (cross masking) | all (one group)
    criterion: str  # attention | hierarchy | motion | random
    members: torch.Tensor  # (L_group,) natural indices of the group's tokens, in the order of the noise
    scores: torch.Tensor  # (S, L_group) float32, the score that decides about members[i] at i
    visible_count: int  # K (ModelConfig.visible_per_group)


@dataclass
class PretrainOutput:
    loss: torch.Tensor
    reconstruction: torch.Tensor
    contrast: torch.Tensor
    plan: MaskPlan
    prediction: torch.Tensor  # (S, L, t_patch * C) in the decoder's order (natural unless release_objective)
    target: torch.Tensor  # (S, L, t_patch * C) the same order


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
        if config.release_objective:
            joint_major = release.joint_major_positions(config.patches // 2, config.joints_per_patch)
            self.register_buffer("release_temporal_members", self.temporal_group[joint_major], persistent=False)
            # The natural index of the target token at each position of the release's decoder sequence (l.598-601).
            self.register_buffer("release_targets", torch.cat([self.temporal_group, self.spatial_group]),
                                 persistent=False)

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
    @torch.no_grad()
    def group_scores(self, sequences: torch.Tensor, tokens: TokenSet) -> list[GroupScores]:
        """Each masking group's members (natural indices), scores (S, L_group) and visible count."""
        config = self.config
        all_patches = torch.arange(config.patches, device=sequences.device)
        layout = {"temporal": (self.temporal_group, all_patches[0::2]),
                  "spatial": (self.spatial_group, all_patches[1::2]),
                  "all": (torch.arange(config.tokens, device=sequences.device), all_patches)}
        result = []
        for name, criterion in config.masking_groups:
            members, patch_ids = layout[name]
            scores = SCORES[criterion](self, sequences, tokens, patch_ids)
            scores = scores.reshape(scores.shape[0], -1).float()
            # The release: both groups' scores joint-major (model_hacm/transformer.py:465, 474), its temporal
            # tokens joint-major too (l.454), its spatial tokens time-major (l.455).
            if config.release_objective:
                scores = release.joint_major_scores(scores, config.joints_per_patch)
                if name == "temporal":
                    members = self.release_temporal_members
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
        groups, keys = self.group_scores(sequences, tokens), []
        for group in groups:
            uniforms = draw_uniforms(generator, tuple(group.scores.shape), offset=offset, total=total,
                                     device=sequences.device)
            keys.append(gumbel_selection_keys(group.scores, uniforms, **config.selection))
        if config.release_objective:
            return self._release_plan(groups, keys)
        chosen = [group.members[largest_keys(group_keys, group.visible_count)]
                  for group, group_keys in zip(groups, keys)]
        visible = torch.cat(chosen, dim=1)
        masked = masked_from_kept(visible, config.tokens)
        temporal_count = groups[0].visible_count if config.masking == "cross" else 0
        return MaskPlan(visible=visible, temporal_count=temporal_count, masked=masked, slots=visible, loss_mask=masked)

    def _release_plan(self, groups: list[GroupScores], keys: list[torch.Tensor]) -> MaskPlan:
        """The release's masks and decoder layout (hacm.model.release_objective): its mask_hyper_matrix ranks
        each group by key (commit 5755d8a, model_mamp/transformer.py:450-456) and its forward_encoder puts the
        spatial group's restore indices past the encoded tokens (model_hacm/transformer.py:480)."""
        temporal, spatial = groups
        k_t, k_s = temporal.visible_count, spatial.visible_count
        temporal_ranking = release.ranked(keys[0], k_t + k_s)  # joint-major positions
        spatial_kept = release.ranked(keys[1], k_s)  # time-major positions
        temporal_kept = temporal_ranking[:, :k_t]
        visible = torch.cat([temporal.members[temporal_kept], spatial.members[spatial_kept]], dim=1)
        return MaskPlan(visible=visible, temporal_count=k_t, masked=masked_from_kept(visible, self.config.tokens),
                        slots=release.decoder_slots(temporal_ranking, k_t, k_s),
                        loss_mask=release.loss_mask(temporal_kept, spatial_kept, temporal.members.shape[0]))

    # --- decoder, targets, losses -----------------------------------------------------------------
    def decode(self, latent: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
        """(S, K, D) encoder outputs placed at positions `slots` -> (S, L, t_patch * C) predictions, one per
        position; position n carries the decoder position embedding of natural token n."""
        visible_tokens = self.decoder_embed(latent)
        full = restore_tokens(visible_tokens, slots, self.mask_token.to(visible_tokens.dtype), self.config.tokens)
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
            contiguous = joints.transpose(1, 3).contiguous()
            if config.release_objective:
                joints = release_to_ball(contiguous, config.curvature).transpose(1, 3)
            else:
                joints = to_ball(contiguous, self.encoder.manifold).transpose(1, 3)
        return patchify(joints, config.t_patch).reshape(joints.shape[0], config.tokens, -1)

    def reconstruction_target(self, sequences: torch.Tensor) -> torch.Tensor:
        return normalise_tokens(self.raw_target(sequences))

    def cross_contrast(self, latent: torch.Tensor, temporal_count: int) -> torch.Tensor:
        """MSE(softmax(h_T h^T), I) + MSE(softmax(h_S h^T), I) + MSE(softmax(h_T h_S^T), I) (docs/method.md §2.8; the
        release's similarity_matrix_inter puts the temporal group's mean on the rows), averaged over groups of
        `contrast_group` consecutive sequences of the global batch (None: one group, the whole batch).

        Every process gathers the global batch's pooled features and computes the same value: a group may
        straddle two processes, and P processes of B/P sequences give what one process of B gives. The
        release computes it per GPU, without gathering (model_hacm/transformer.py:527-533): a group of
        its per-GPU batch x bodies is the same thing, since the sampler hands each process a contiguous
        slice of the global batch and bodies follow their sample (to_sequences)."""
        latent = latent.float()
        pooled = torch.stack([latent[:, :temporal_count].mean(dim=1), latent[:, temporal_count:].mean(dim=1),
                              latent.mean(dim=1)], dim=1)  # (S, 3, D): h_T, h_S, h
        pooled = gather_rows(pooled)  # the global batch, in the order of its sequences
        sequences = pooled.shape[0]
        size = self.config.contrast_group or sequences
        if sequences % size:
            raise ConfigError(f"model.contrast_group: must divide the global batch of {sequences} sequences "
                              f"(got {size})")
        h_temporal, h_spatial, h_all = pooled.reshape(sequences // size, size, 3, -1).unbind(dim=2)
        identity = torch.eye(size, device=latent.device)
        total = latent.new_zeros(())
        for left, right in ((h_temporal, h_all), (h_spatial, h_all), (h_temporal, h_spatial)):
            similarity = (left @ right.transpose(1, 2)).softmax(dim=-1)
            total = total + (similarity - identity).pow(2).mean()  # equal groups: the mean of the groups' MSEs
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
        prediction = self.decode(latent, plan.slots).float()
        target = self.reconstruction_target(sequences)
        if config.release_objective:
            target = target[:, self.release_targets]
        reconstruction = masked_mse(prediction, target, plan.loss_mask)
        contrast = latent.new_zeros((), dtype=torch.float32)
        if config.contrast_weight > 0:
            contrast = self.cross_contrast(latent, plan.temporal_count)
        loss = reconstruction + config.contrast_weight * contrast
        return PretrainOutput(loss=loss, reconstruction=reconstruction, contrast=contrast, plan=plan,
                              prediction=prediction, target=target)
