"""The token bookkeeping of the release's HA-CM objective (ModelConfig.release_objective, docs/method.md §4).

What YinxPeng/HA-CM-main's model_hacm/transformer.py `forward` computes (with `mask_hyper_matrix` of its
commit 5755d8a, model_mamp/transformer.py:429-464), its hard-coded sizes (18 joints, 12 patches per group,
18 * 12 tokens per group) read from the config. A group holds P_g time patches of J joints, H = P_g * J
tokens, in one of two orders: time-major (patch * J + joint, hacm's natural order) or joint-major
(joint * P_g + patch). The release mixes them:
- the temporal group's tokens, scores and noise are joint-major (l.454, 463-466): a consistent choice;
- the spatial group's tokens and noise are time-major (l.455) but its scores joint-major (l.471-475), so
  the score of joint-major position i decides about the time-major token i;
- the decoder sequence is [temporal group, joint-major | spatial group, time-major] and its position p
  gets the decoder position embedding of natural token p (l.512-518); the loss compares it with the
  target [temporal group, time-major | spatial group, time-major] (l.598-602) under the mask
  [temporal, joint-major | spatial, time-major] (l.479);
- `ids_restore_s + 18 * 12` (l.480) points the spatial group's restore indices past the encoded tokens,
  into the mask tokens: the spatial half of the decoder sequence is all mask tokens, and the encoded
  spatial tokens land where the temporal restore indices K_t .. K_t + K_s - 1 point, i.e. at the
  temporal positions ranked K_t + 1 .. K_t + K_s by the Gumbel keys.
hacm's corrected objective (the default) uses the natural order throughout.
"""

from __future__ import annotations

import torch

from hacm.model.masking import masked_from_kept


def joint_major_positions(patches: int, joints: int) -> torch.Tensor:
    """(patches * joints,) the time-major index (patch * joints + joint) of each joint-major position
    (joint * patches + patch) of a group."""
    return torch.arange(patches * joints).reshape(patches, joints).t().reshape(-1)


def joint_major_scores(scores: torch.Tensor, joints: int) -> torch.Tensor:
    """(S, P_g * J) scores in time-major order -> the same scores in joint-major order."""
    count = scores.shape[0]
    return scores.reshape(count, -1, joints).transpose(1, 2).reshape(count, -1)


def ranked(keys: torch.Tensor, count: int) -> torch.Tensor:
    """(S, count) the positions of each row's `count` largest keys, largest first (the release's
    argsort(descending=True)[:, :count])."""
    return keys.topk(count, dim=-1, sorted=True).indices


def decoder_slots(temporal_ranking: torch.Tensor, temporal_count: int, spatial_count: int) -> torch.Tensor:
    """(S, K_t + K_s) the decoder positions of the encoded tokens [temporal by rank, spatial by rank].

    temporal_ranking: (S, >= K_t + K_s) joint-major temporal positions by decreasing key. The temporal
    token of rank r goes to its own position; with the offset of l.480, the spatial token of rank r goes
    to the position of the temporal token of rank K_t + r (l.508-514)."""
    return temporal_ranking[:, : temporal_count + spatial_count]


def loss_mask(temporal_kept: torch.Tensor, spatial_kept: torch.Tensor, group_tokens: int) -> torch.Tensor:
    """(S, 2H) the release's loss mask: the temporal group's (joint-major positions kept) then the spatial
    group's (time-major positions kept); True where the loss counts."""
    return torch.cat([masked_from_kept(temporal_kept, group_tokens), masked_from_kept(spatial_kept, group_tokens)],
                     dim=1)
