"""The pretraining methods hacm knows (docs/method.md §2.9): one registry, torch-free.

A method is a preset of the model's fields (hacm.model.config.ModelConfig): HA-CM is the defaults, MAE and
MAMP the same model with other tokens, masking, geometry and target. The config's `method:`, the run
folders, the workflow schema's method lists (tests/test_registries.py keeps them equal), the table rows,
the mask diagnostic's --method and the kinds of the authors' published files all read it. Adding a method
means adding an entry here (and its masking criterion in hacm.model.criteria if it brings a new one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class Method:
    key: str  # the config's `method:` and the run folder
    label: str  # the table rows' label
    objective: str  # what the tables' notes say its encoders were pretrained to minimise
    source: str  # the code its recipe and objective follow
    published_kind: str  # the kind of the authors' checkpoint files of this method (hacm.release.kinds)
    preset: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))  # ModelConfig fields


def _method(key: str, label: str, objective: str, source: str, published_kind: str, **preset) -> Method:
    return Method(key, label, objective, source, published_kind, MappingProxyType(preset))


METHODS: dict[str, Method] = {method.key: method for method in (
    _method("hacm", "HA-CM", "the corrected HA-CM objective (docs/method.md §2.7)", "YinxPeng/HA-CM-main",
            "release-hacm"),
    _method("mae", "MAE", "MAE's objective, as maoyunyao/MAMP", "maoyunyao/MAMP (model_mae)", "mae",
            token_joints="all", masking="random", hyperbolic=False, target="coordinates", contrast_weight=0.0),
    # MAMP: motion-aware masking keeps low-motion tokens, its motion divided by tau x its max
    # (model_mamp/transformer.py:294); tau 0.80 is motion_aware_tau of
    # config/ntu60_xsub_joint/pretrain_mamp_t120_layer8+5_mask90.yaml:46 (0.75 on NTU-120: config/paper.yaml).
    _method("mamp", "MAMP", "MAMP's objective, as maoyunyao/MAMP", "maoyunyao/MAMP", "mamp",
            token_joints="all", masking="motion", hyperbolic=False, target="motion", contrast_weight=0.0,
            keep_high_scores=False, score_max_fraction=0.80),
)}

# HA-CM under model.release_objective: what the tables' notes say of such a row.
RELEASE_OBJECTIVE = ("the release's own HA-CM objective (model.release_objective: its decoder offset, loss-mask "
                     "and score orders, distance factor 4, clip at norm 1)")
RANDOM = "random"  # the randomly initialised encoder: the "no pretraining" rows, not a method
RANDOM_LABEL = "random encoder (no pretraining)"
ABLATED_METHOD = "hacm"  # every ablation is a variant of HA-CM


def method_label(key: str) -> str:
    """The table label of a method or of the random encoder."""
    return RANDOM_LABEL if key == RANDOM else METHODS[key].label
