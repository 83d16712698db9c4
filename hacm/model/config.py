"""Model configuration: every size and switch of HA-CM and of its baselines (docs/method.md §2), validated once.

Nothing inside the model is hard-coded: frames, patch length, joints and their hierarchy, widths,
depths and the masking / target / loss switches all come from here. MAE and MAMP are presets of the
same fields, not separate models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hacm.config import ConfigError, require, section_from_dict, to_plain_dict
from hacm.data.kinect import NUM_JOINTS, TRUNK_JOINTS

MASKINGS = ("cross", "single", "motion", "random")
TEMPORAL_CRITERIA = ("attention", "random")
SPATIAL_CRITERIA = ("hierarchy", "random")
TARGETS = ("motion", "coordinates")
TOKEN_JOINTS = ("limbs", "all")
SCORE_SCALINGS = ("max", "minmax")


@dataclass(frozen=True)
class ModelConfig:
    # Input
    frames: int = 72
    t_patch: int = 3
    num_joints: int = NUM_JOINTS
    trunk_joints: tuple[int, ...] = TRUNK_JOINTS
    num_bodies: int = 2
    coords: int = 3
    token_joints: str = "limbs"  # HA-CM: the 18 limb joints are tokens; MAE / MAMP: all joints
    # Encoder / decoder
    dim: int = 256
    depth: int = 8
    heads: int = 8
    mlp_ratio: float = 4.0
    decoder_dim: int = 256
    decoder_depth: int = 3
    decoder_heads: int = 8
    drop_path: float = 0.0
    # Masking
    masking: str = "cross"  # cross grouping | single criterion on all tokens | MAMP motion | MAE random
    temporal_criterion: str = "attention"
    spatial_criterion: str = "hierarchy"
    single_criterion: str = "attention"  # the criterion of masking="single"
    mask_ratio: float = 0.9
    keep_high_scores: bool = True  # high-score tokens are more likely to stay visible (authors' code)
    score_scaling: str = "max"  # max: s / (temperature * max s + eps) (the release); minmax: range to 1/temperature
    score_temperature: float = 0.9  # the release's 0.9 (mask_hyper_matrix); MAMP's tau; minmax e.g. 0.25
    parent_weight: float = 0.01  # lambda of the parent distance in the spatial criterion
    # Geometry, target, losses
    hyperbolic: bool = True
    curvature: float = 1.0
    embedding_clip: float | None = None  # clip token embeddings to this norm before expmap0 (None: as the release)
    target: str = "motion"
    contrast_weight: float = 1.0  # lambda_cc; 0 turns the cross-contrast loss off
    # L_cc is the mean over consecutive groups of this many sequences (batch x bodies) of the global batch:
    # the release's per-GPU batch x bodies, as its L_cc never leaves one GPU. None: the whole global batch.
    contrast_group: int | None = None
    # The release's own objective instead of the corrected one (docs/method.md §2.7, §4; hacm.model.release_objective):
    # its decoder restore offset, joint-major temporal loss mask and spatial scores, distance factor 4, and
    # a ball projection that rescales only norms reaching 1. Cross-masked HA-CM only.
    release_objective: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "trunk_joints", tuple(self.trunk_joints))
        self.validate()

    # --- derived sizes -----------------------------------------------------------------------
    @property
    def patches(self) -> int:
        return self.frames // self.t_patch

    @property
    def token_joint_ids(self) -> tuple[int, ...]:
        if self.token_joints == "all":
            return tuple(range(self.num_joints))
        return tuple(j for j in range(self.num_joints) if j not in self.trunk_joints)

    @property
    def joints_per_patch(self) -> int:
        return len(self.token_joint_ids)

    @property
    def tokens(self) -> int:
        return self.patches * self.joints_per_patch

    @property
    def needs_spatial_scores(self) -> bool:
        if self.masking == "cross":
            return self.spatial_criterion == "hierarchy"
        return self.masking == "single" and self.single_criterion == "hierarchy"

    def visible_per_group(self, group_tokens: int) -> int:
        """K, the tokens of a group of L that stay visible.

        MAE / MAMP as MAMP's code runs them (all joints as tokens, masking random / motion): int(L * (1 - r))
        in float arithmetic, its len_keep (model_mamp/transformer.py:286, model_mae/transformer.py:283): 74 of
        750 at r = 0.9, since 1 - 0.9 is just below 0.1. HA-CM's limb tokens, whatever the masking (the mask
        figure's random and motion panels too, so that its panels keep as many tokens): floor((1 - r) * L)
        guarded against that float error, which equals the release's int(0.1 * L) at r = 0.9
        (mask_hyper_matrix hard-codes 0.1): 21 of 216, 27 of 270."""
        if self.masking in ("motion", "random") and self.token_joints == "all":
            return int(group_tokens * (1 - self.mask_ratio))
        return int(math.floor(round((1.0 - self.mask_ratio) * group_tokens, 6)))

    def check_global_batch(self, sequences: int) -> None:
        """ConfigError unless a global batch of `sequences` (samples x bodies) splits into L_cc groups."""
        if self.contrast_group is None or self.contrast_weight == 0:
            return
        require(sequences % self.contrast_group == 0, "model.contrast_group",
                f"must divide the global batch of {sequences} sequences (batch size x {self.num_bodies} bodies)",
                got=self.contrast_group)

    # --- checks -------------------------------------------------------------------------------
    def validate(self) -> None:
        def need(condition: bool, key: str, message: str) -> None:
            require(condition, f"model.{key}", message, got=getattr(self, key))

        for key in ("frames", "t_patch", "num_joints", "num_bodies", "coords", "dim", "depth", "heads",
                    "decoder_dim", "decoder_depth", "decoder_heads"):
            need(isinstance(getattr(self, key), int) and getattr(self, key) > 0, key, "must be a positive integer")
        need(self.frames % self.t_patch == 0, "frames", f"must be a multiple of t_patch={self.t_patch}")
        need(self.patches >= 2, "frames", "must hold at least two time patches")
        need(self.dim % self.heads == 0, "dim", f"must be divisible by heads={self.heads}")
        need(self.decoder_dim % self.decoder_heads == 0, "decoder_dim",
             f"must be divisible by decoder_heads={self.decoder_heads}")
        need(all(0 <= j < self.num_joints for j in self.trunk_joints), "trunk_joints",
             f"must be joint indices below num_joints={self.num_joints}")
        need(len(set(self.trunk_joints)) == len(self.trunk_joints) > 0, "trunk_joints", "must be distinct, at least one")
        need(self.token_joints in TOKEN_JOINTS, "token_joints", f"must be one of {TOKEN_JOINTS}")
        need(self.masking in MASKINGS, "masking", f"must be one of {MASKINGS}")
        need(self.temporal_criterion in TEMPORAL_CRITERIA, "temporal_criterion", f"must be one of {TEMPORAL_CRITERIA}")
        need(self.spatial_criterion in SPATIAL_CRITERIA, "spatial_criterion", f"must be one of {SPATIAL_CRITERIA}")
        need(self.single_criterion in ("attention", "hierarchy"), "single_criterion", "must be attention or hierarchy")
        need(self.target in TARGETS, "target", f"must be one of {TARGETS}")
        need(0.0 < self.mask_ratio < 1.0, "mask_ratio", "must lie in (0, 1)")
        need(self.curvature > 0, "curvature", "must be positive")
        need(self.score_temperature > 0, "score_temperature", "must be positive")
        need(self.score_scaling in SCORE_SCALINGS, "score_scaling", f"must be one of {SCORE_SCALINGS}")
        need(self.embedding_clip is None or self.embedding_clip > 0, "embedding_clip", "must be positive or null")
        need(self.drop_path >= 0 and self.parent_weight >= 0 and self.contrast_weight >= 0, "contrast_weight",
             "weights and drop_path must be non-negative")
        need(not (self.contrast_weight > 0 and self.masking != "cross"), "contrast_weight",
             "the cross-contrast loss needs masking=cross (it contrasts the two groups); set it to 0")
        # Ignored when L_cc is off (contrast_weight 0), so a method-wide setting survives the w/o-L_cc ablations.
        group = self.contrast_group
        need(group is None or (isinstance(group, int) and not isinstance(group, bool) and group >= 2), "contrast_group",
             "must be a number of sequences of at least 2 (a group of one contrasts nothing) or null")
        need(isinstance(self.release_objective, bool), "release_objective", "must be true or false")
        need(not (self.release_objective and self.masking != "cross"), "release_objective",
             "is the release's HA-CM objective: it needs masking=cross")
        need(not (self.release_objective and self.patches % 2), "release_objective",
             f"needs an even number of time patches (two equal groups, as the release's), not {self.patches}")
        need(not (self.needs_spatial_scores and self.token_joints != "limbs"), "token_joints",
             "the spatial hierarchy criterion needs token_joints=limbs (the trunk joints are its parents)")
        smallest_group = (self.patches // 2) * self.joints_per_patch
        if self.masking in ("motion", "random", "single"):
            smallest_group = self.tokens
        need(self.visible_per_group(smallest_group) >= 1, "mask_ratio", "leaves no visible token in a group")

    def to_dict(self) -> dict:
        return to_plain_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        return section_from_dict(cls, data, "model")


# Baselines as presets of the same fields (docs/method.md §2.9).
PRESETS: dict[str, dict] = {
    "hacm": {},
    "mamp": dict(token_joints="all", masking="motion", hyperbolic=False, target="motion", contrast_weight=0.0,
                 keep_high_scores=False, score_temperature=0.80),
    "mae": dict(token_joints="all", masking="random", hyperbolic=False, target="coordinates", contrast_weight=0.0),
}


def preset(name: str, **overrides) -> ModelConfig:
    """A method's configuration (hacm, mamp, mae) with overrides."""
    if name not in PRESETS:
        raise ConfigError(f"unknown method {name!r}; expected one of {', '.join(PRESETS)}")
    return ModelConfig(**{**PRESETS[name], **overrides})
