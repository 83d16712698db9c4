"""The masking criteria hacm knows (docs/method.md §2.3-2.6, §2.9): one registry, torch-free.

A criterion scores the tokens of a masking group; the Gumbel top-K of the scaled scores stays visible
(hacm.model.masking). Each entry says where a config may name it (its roles), what it needs, and how the
mask figure shows it; its score function is registered under the same name in
hacm.model.criterion_scores (tests/test_registries.py holds the two key sets equal). The model config's
choices (ModelConfig.masking, temporal_criterion, spatial_criterion, single_criterion), the mask figure's
panels and the FLOP count read it. Adding a criterion is an entry here, its score function and its test.

Roles:
- temporal, spatial: a group of cross masking (masking: cross; temporal_criterion / spatial_criterion);
- single: one group of all tokens under masking: single (single_criterion);
- masking: a whole masking of its own (masking: <name>), as MAMP's motion and MAE's random.
"""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("temporal", "spatial", "single", "masking")


@dataclass(frozen=True)
class Criterion:
    name: str
    roles: tuple[str, ...]
    title: str  # the mask figure's panel title; {geometry} is the model's (Poincaré-ball / Euclidean)
    limb_tokens: bool = False  # its scores need the trunk joints as parents: token_joints must be limbs
    projections: bool = False  # it runs the attention projections W_q / W_k over its group (FLOP count)
    panel_method: str | None = None  # its figure panel keeps this method's score settings (hacm.methods)

    def panel_fields(self) -> dict:
        """The ModelConfig fields of its mask-figure panel: the criterion alone on all limb tokens."""
        if "single" in self.roles:
            return {"masking": "single", "single_criterion": self.name}
        return {"masking": self.name}


CRITERIA: dict[str, Criterion] = {criterion.name: criterion for criterion in (
    # The release's temporal attention formula (model_hacm/transformer.py forward_encoder + mask_hyper_matrix).
    Criterion("attention", ("temporal", "single"), "temporal attention", projections=True),
    # Distances between limb tokens and to their trunk parent (hyperbolic or Euclidean).
    Criterion("hierarchy", ("spatial", "single"), "spatial hierarchy ({geometry} distances)", limb_tokens=True),
    # MAMP's motion-aware masking (model_mamp/transformer.py:286-300).
    Criterion("motion", ("masking",), "MAMP motion-aware", panel_method="mamp"),
    # Equal scores: the Gumbel noise alone decides (MAE; the w/o-criterion ablations).
    Criterion("random", ("temporal", "spatial", "masking"), "random"),
)}


def criteria_for(role: str) -> tuple[str, ...]:
    """The names a config may give in `role`, in registry order."""
    return tuple(name for name, criterion in CRITERIA.items() if role in criterion.roles)


# ModelConfig.masking: cross grouping, one criterion on all tokens, or a criterion's own masking.
MASKINGS = ("cross", "single", *criteria_for("masking"))
