"""How much of the masked-motion target is there to learn: baselines of the reconstruction loss on a store.

    python benchmarks/experiments/target_predictability.py resources/data/synthetic/ntu60-xsub [--frames 48 --t-patch 3]

Draws one augmented training batch (256 samples, seed 0) as pretraining does, builds HA-CM's motion target
(per-token normalised frame differences of the limb tokens), and prints three reference losses: predicting
zero for every token of the batch (what a pretraining loss that learned only the mean reaches; absent
second bodies have an all-zero target), the same over the tokens of present bodies only, and an oracle
that sees both temporal neighbours of a token (the average of their targets, best-scaled), an upper bound
on what nearby context could give at a low masking ratio.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from hacm.data.loader import SkeletonDataset
from hacm.data.storage import SkeletonStore
from hacm.model.config import preset
from hacm.model.pretrainer import normalise_tokens, patchify, to_sequences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path, help="a benchmark folder with train/")
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--t-patch", type=int, default=3)
    args = parser.parse_args()
    dataset = SkeletonDataset(SkeletonStore(args.store / "train"), frames=args.frames, train=True, seed=0)
    batch = dataset.__getitems__(list(range(min(256, len(dataset)))))
    sequences = to_sequences(batch.x)
    present = sequences.abs().sum(dim=(1, 2, 3)) > 0
    joints = sequences[:, :, :, torch.tensor(preset("hacm").token_joint_ids)]
    motion = torch.zeros_like(joints)
    motion[:, :, :-1] = joints[:, :, 1:] - joints[:, :, :-1]
    target = normalise_tokens(patchify(motion, args.t_patch))  # (S, P, J, D)
    zero = target.pow(2).mean(-1)
    neighbours = (target[:, :-2] + target[:, 2:]) / 2
    inner = target[:, 1:-1]
    scale = (neighbours * inner)[present].sum() / neighbours[present].pow(2).sum()
    oracle = (scale * neighbours - inner).pow(2).mean(-1)
    print(f"{args.store}: {int(present.sum())} of {len(present)} body sequences present "
          f"({100 * present.float().mean():.0f} %), frames {args.frames}, t_patch {args.t_patch}")
    print(f"zero prediction, whole batch:          {zero.mean():.3f}")
    print(f"zero prediction, present bodies:       {zero[present].mean():.3f}")
    print(f"temporal-neighbour oracle, present:    {oracle[present].mean():.3f}")


if __name__ == "__main__":
    main()
