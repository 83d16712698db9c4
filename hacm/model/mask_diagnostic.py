"""Does a masking criterion change which tokens stay visible? (docs/method.md §2.10)

For each masking group of a model, on a batch of body sequences and many Gumbel draws:
- agreement: the share of the tokens the criterion keeps that random masking (equal scores) keeps with
  the same noise. 1.0 means the criterion changes nothing; the release's temporal formula gives about
  0.92 at the paper size, the first version of docs/method.md §2.4 gave 0.999.
- keep rate of the top and bottom score deciles (random masking: K / L for both);
- the share of token points on the ball's clip sphere, where the radius carries no information.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from hacm.data.augment import augment_batch
from hacm.data.storage import SkeletonStore
from hacm.model.hyperbolic import ball_radius
from hacm.model.masking import gumbel_selection_keys
from hacm.model.pretrainer import HACMPretrainer, to_sequences

# A point counts as on the clip sphere within this distance of the clip radius (float32 holds ~1e-7).
_SPHERE_TOLERANCE = 1e-6
_DRAWS_PER_CHUNK = 50


@dataclass(frozen=True)
class GroupAgreement:
    group: str  # temporal | spatial | all
    criterion: str  # attention | hierarchy | motion | random
    tokens: int  # L, tokens of the group per sequence
    visible: int  # K
    agreement: float
    top_decile_keep: float
    bottom_decile_keep: float

    @property
    def random_keep(self) -> float:
        return self.visible / self.tokens


@dataclass(frozen=True)
class MaskingDiagnostic:
    groups: list[GroupAgreement]
    on_clip_sphere: float | None  # None: Euclidean model
    sequences: int
    draws: int

    def as_dict(self) -> dict:
        return {"groups": [{**asdict(g), "random_keep": g.random_keep} for g in self.groups],
                "on_clip_sphere": self.on_clip_sphere, "sequences": self.sequences, "draws": self.draws}

    def agreement_by_group(self) -> dict[str, float]:
        return {g.group: round(g.agreement, 4) for g in self.groups}


def _decile_members(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(S, L) bool masks of each row's top and bottom tenth of scores (ties broken by position)."""
    count = max(1, math.ceil(scores.shape[1] / 10))
    order = scores.argsort(dim=1, stable=True)
    top = torch.zeros_like(scores, dtype=torch.bool).scatter_(1, order[:, -count:], True)
    bottom = torch.zeros_like(scores, dtype=torch.bool).scatter_(1, order[:, :count], True)
    return top, bottom


def _kept(keys: torch.Tensor, count: int) -> torch.Tensor:
    """(..., L) selection keys -> bool mask of the `count` largest per row."""
    return torch.zeros_like(keys, dtype=torch.bool).scatter_(-1, keys.topk(count, dim=-1).indices, True)


@torch.no_grad()
def diagnose_masking(model: HACMPretrainer, x: torch.Tensor, *, draws: int = 1000, seed: int = 0) -> MaskingDiagnostic:
    """The diagnostic of `model`'s masking on a batch x (N, C, T, V, M) whose body sequences are all present."""
    config = model.config
    sequences = to_sequences(x)
    tokens = model.encoder.embed(sequences)
    generator = torch.Generator(device=x.device).manual_seed(seed)
    results = []
    for group in model.group_scores(sequences, tokens):
        scores = group.scores
        flat = torch.zeros_like(scores)
        top, bottom = _decile_members(scores)
        agree = kept_top = kept_bottom = 0.0
        for start in range(0, draws, _DRAWS_PER_CHUNK):
            chunk = min(_DRAWS_PER_CHUNK, draws - start)
            uniforms = torch.rand((chunk, *scores.shape), generator=generator, device=x.device)
            by_criterion = _kept(gumbel_selection_keys(scores.expand_as(uniforms), uniforms, **config.selection),
                                 group.visible_count)
            by_random = _kept(gumbel_selection_keys(flat.expand_as(uniforms), uniforms, **config.selection),
                              group.visible_count)
            agree += float((by_criterion & by_random).sum())
            kept_top += float((by_criterion & top).sum())
            kept_bottom += float((by_criterion & bottom).sum())
        rows = draws * scores.shape[0]
        results.append(GroupAgreement(
            group=group.group, criterion=group.criterion, tokens=scores.shape[1], visible=group.visible_count,
            agreement=agree / (rows * group.visible_count),
            top_decile_keep=kept_top / (rows * int(top[0].sum())),
            bottom_decile_keep=kept_bottom / (rows * int(bottom[0].sum()))))
    on_sphere = None
    if config.hyperbolic:
        norms = tokens.points.norm(dim=-1)
        on_sphere = float((norms >= ball_radius(config.curvature) - _SPHERE_TOLERANCE).float().mean())
    return MaskingDiagnostic(groups=results, on_clip_sphere=on_sphere, sequences=sequences.shape[0], draws=draws)


def present_bodies(store: SkeletonStore, *, frames: int, count: int) -> torch.Tensor:
    """The first `count` present body sequences of a store (store order, test-time centre crop), as a
    batch (count, C, T, V, M=1) in which every body sequence holds data."""
    chosen = []
    for index in range(len(store)):
        if int(store.valid_lengths[index]) == 0:
            continue
        x = augment_batch(store.frames, torch.tensor([int(store.offsets[index])]),
                          torch.tensor([int(store.valid_lengths[index])]), None, frames=frames, train=False)
        for body in range(x.shape[-1]):
            if x[..., body].any():
                chosen.append(x[..., body : body + 1])
            if len(chosen) == count:
                return torch.cat(chosen)
    if not chosen:
        raise ValueError(f"{store.directory}: no sample holds a body")
    return torch.cat(chosen)


def format_table(diagnostic: MaskingDiagnostic, *, title: str) -> str:
    """A readable table of the diagnostic."""
    lines = [f"{title}: {diagnostic.sequences} body sequences, {diagnostic.draws} Gumbel draws",
             f"{'group':<9} {'criterion':<10} {'K / L':>9} {'agreement':>10} {'top-10% kept':>13} "
             f"{'bottom-10% kept':>16} {'random kept':>12}"]
    for g in diagnostic.groups:
        lines.append(f"{g.group:<9} {g.criterion:<10} {f'{g.visible}/{g.tokens}':>9} {g.agreement:>10.3f} "
                     f"{g.top_decile_keep:>13.3f} {g.bottom_decile_keep:>16.3f} {g.random_keep:>12.3f}")
    sphere = "n/a (Euclidean)" if diagnostic.on_clip_sphere is None else f"{100 * diagnostic.on_clip_sphere:.1f} %"
    lines.append(f"token points on the clip sphere: {sphere}")
    return "\n".join(lines)

