"""The figure's panels: each masking criterion's mask of a sequence (docs/method.md §2.3-2.6, §2.9).

Every criterion of hacm.model.criteria that can mask all tokens alone (role single or masking: temporal
attention, spatial hierarchy, MAMP's motion-aware masking, uniform random masking) runs on the same
sequence, with the same weights and a generator seeded the same way. Every panel uses the
18 limb-joint tokens (token_joints="limbs") so that the token grids line up. Because the generators
are seeded alike, every criterion adds the same Gumbel noise to its scores: the differences between
panels come from the scores alone (MAMP keeps the *lowest* keys, so its visible set shuns the tokens
that random masking keeps: read its panel against the motion, not against panel (d)).
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from hacm.model.config import SELECTION_FIELDS, ModelConfig, preset
from hacm.model.criteria import CRITERIA
from hacm.model.mask_diagnostic import diagnose_masking
from hacm.model.pretrainer import HACMPretrainer, to_sequences

FIGURE_DRAWS = 200  # Gumbel draws behind each panel's agreement figure


def panel_criteria() -> tuple[str, ...]:
    """The criteria that can mask all tokens alone, in registry order: one panel each."""
    return tuple(name for name, criterion in CRITERIA.items() if {"single", "masking"} & set(criterion.roles))


def criterion_config(config: ModelConfig, criterion: str) -> ModelConfig:
    """The model config of one panel: the criterion on all limb tokens, no cross-contrast; a criterion of
    another method (MAMP's motion) selects as that method does."""
    entry = CRITERIA[criterion]
    fields = entry.panel_fields()
    if entry.panel_method is not None:
        method = preset(entry.panel_method)
        fields.update({key: getattr(method, key) for key in SELECTION_FIELDS})
    return dataclasses.replace(config, token_joints="limbs", contrast_weight=0.0, **fields)


def criterion_title(criterion: str, config: ModelConfig) -> str:
    return CRITERIA[criterion].title.format(geometry="Poincaré-ball" if config.hyperbolic else "Euclidean")


def criterion_model(config: ModelConfig, state: dict) -> HACMPretrainer:
    """A model of `config` holding `state` (whose shapes read_checkpoint / initial_state guarantee)."""
    with torch.random.fork_rng(devices=[]):  # the weights are replaced; keep the global RNG untouched
        model = HACMPretrainer(config)
    model.load_state_dict(state)
    return model.eval()


@dataclass(frozen=True)
class CriterionMask:
    criterion: str
    title: str
    config: ModelConfig
    masked: np.ndarray  # (S, L) bool, one row per body; token n = patch * J + joint index
    agreement: float  # share of visible tokens random masking keeps too, same noise (docs/method.md §2.10)

    def visible_count(self, body: int) -> int:
        return int((~self.masked[body]).sum())

    def shared_visible(self, other: CriterionMask, *, body: int) -> int:
        """Tokens visible under both masks: with the same noise, how far a criterion moves off random."""
        return int((~self.masked[body] & ~other.masked[body]).sum())

    def patch_grid(self, body: int) -> np.ndarray:
        """(P, J) bool, True where masked."""
        return self.masked[body].reshape(self.config.patches, self.config.joints_per_patch)


@contextmanager
def single_threaded():
    """One intra-op thread for the duration: one sample's tensors are tiny, and waking a thread pool
    costs more than it saves (on a busy machine, milliseconds per op instead of microseconds)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@torch.no_grad()
def plan_criterion_masks(x: torch.Tensor, *, config: ModelConfig, state: dict, seed: int) -> list[CriterionMask]:
    """The mask of every criterion for a (1, C, T, V, M) batch, same weights, same seeded generator."""
    sequences = to_sequences(x)
    present = x[..., [body for body in range(x.shape[-1]) if x[..., body].any()]]
    masks = []
    with single_threaded():
        for criterion in panel_criteria():
            panel = criterion_config(config, criterion)
            model = criterion_model(panel, state)
            tokens = model.encoder.embed(sequences)
            plan = model.plan_masks(sequences, tokens, generator=torch.Generator().manual_seed(seed))
            agreement = diagnose_masking(model, present, draws=FIGURE_DRAWS, seed=seed).groups[0].agreement
            masks.append(CriterionMask(criterion=criterion, title=criterion_title(criterion, panel), config=panel,
                                       masked=plan.masked.numpy(), agreement=agreement))
    return masks
