"""Model configuration: every size and switch of HA-CM and of its baselines (docs/method.md §2), validated once.

Nothing inside the model is hard-coded: frames, patch length, joints and their hierarchy, widths,
depths and the masking / target / loss switches all come from here. MAE and MAMP are presets of the
same fields, not separate models (hacm.methods); the masking criteria are hacm.model.criteria's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hacm.config import ConfigError, require, section_from_dict, to_plain_dict
from hacm.data.kinect import NUM_JOINTS, TRUNK_JOINTS
from hacm.methods import METHODS
from hacm.model.criteria import CRITERIA, MASKINGS, criteria_for

TARGETS = ("motion", "coordinates")
TOKEN_JOINTS = ("limbs", "all")
SCORE_SCALINGS = ("max", "minmax")
# The fields that decide how scores select tokens (ModelConfig.selection).
SELECTION_FIELDS = ("keep_high_scores", "score_scaling", "score_max_fraction", "score_temperature")


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
    # hacm.model.criteria: cross grouping | one criterion on all tokens | MAMP motion | MAE random
    masking: str = "cross"
    temporal_criterion: str = "attention"
    spatial_criterion: str = "hierarchy"
    single_criterion: str = "attention"  # the criterion of masking="single"
    mask_ratio: float = 0.9
    keep_high_scores: bool = True  # high-score tokens are more likely to stay visible (authors' code)
    # How scores are scaled before the softmax (hacm.model.masking.scaled_scores):
    # max: s / (score_max_fraction * max s + eps), the release's 0.9 (mask_hyper_matrix) and MAMP's tau;
    # minmax: the range mapped to [0, 1], over score_temperature (e.g. 0.25), which minmax needs and max refuses.
    score_scaling: str = "max"
    score_max_fraction: float = 0.9
    score_temperature: float | None = None
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
    def masking_groups(self) -> tuple[tuple[str, str], ...]:
        """(group, criterion) of each masking group: temporal and spatial under cross masking, else all."""
        if self.masking == "cross":
            return ("temporal", self.temporal_criterion), ("spatial", self.spatial_criterion)
        return (("all", self.single_criterion if self.masking == "single" else self.masking),)

    @property
    def selection(self) -> dict:
        """The arguments of hacm.model.masking.gumbel_selection_keys besides scores and noise."""
        divisor = self.score_max_fraction if self.score_scaling == "max" else self.score_temperature
        return {"scaling": self.score_scaling, "divisor": divisor, "keep_high": self.keep_high_scores}

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
        for role in ("temporal", "spatial", "single"):
            need(getattr(self, f"{role}_criterion") in criteria_for(role), f"{role}_criterion",
                 f"must be one of {criteria_for(role)}")
        need(self.target in TARGETS, "target", f"must be one of {TARGETS}")
        need(0.0 < self.mask_ratio < 1.0, "mask_ratio", "must lie in (0, 1)")
        need(self.curvature > 0, "curvature", "must be positive")
        need(self.score_scaling in SCORE_SCALINGS, "score_scaling", f"must be one of {SCORE_SCALINGS}")
        need(_positive_number(self.score_max_fraction), "score_max_fraction", "must be a positive number")
        if self.score_scaling == "minmax":
            need(_positive_number(self.score_temperature), "score_temperature",
                 "is the temperature of score_scaling minmax: set it to a positive number (e.g. 0.25)")
        need(self.score_scaling == "minmax" or self.score_temperature is None, "score_temperature",
             "is the temperature of score_scaling minmax only; under max scaling the scores are divided by "
             "score_max_fraction x their max: set score_max_fraction instead")
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
        for _, criterion in self.masking_groups:
            need(not (CRITERIA[criterion].limb_tokens and self.token_joints != "limbs"), "token_joints",
                 f"the {criterion} criterion needs token_joints=limbs (the trunk joints are its parents)")
        smallest_group = (self.patches // 2) * self.joints_per_patch
        if self.masking in ("motion", "random", "single"):
            smallest_group = self.tokens
        need(self.visible_per_group(smallest_group) >= 1, "mask_ratio", "leaves no visible token in a group")

    def to_dict(self) -> dict:
        return to_plain_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        return section_from_dict(cls, data, "model")

    @classmethod
    def from_stored(cls, data: dict) -> ModelConfig:
        """The config a checkpoint or encoder file recorded, written before 2026-12-07 too: then the
        divisor of max scaling was recorded as score_temperature (now score_max_fraction)."""
        data = dict(data)
        if data.get("score_scaling", "max") == "max" and "score_max_fraction" not in data:
            if "score_temperature" in data:
                data["score_max_fraction"] = data.pop("score_temperature")
        return cls.from_dict(data)


def _positive_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def preset(name: str, **overrides) -> ModelConfig:
    """A method's configuration (hacm.methods) with overrides."""
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; expected one of {', '.join(METHODS)}")
    return ModelConfig(**{**METHODS[name].preset, **overrides})
