"""The masking diagnostic (docs/method.md §2.10) of every variant the README reports, as one Markdown table.

    python benchmarks/experiments/bench_masking.py --data resources/data/synthetic/ntu60-xsub/test \
        [--results results] [--draws 1000] [--sequences 40]

Fresh models at the paper size (ModelConfig defaults: D 256, depth 8, T 72, t_patch 3) for full HA-CM,
each criterion ablation, minmax scaling at tau 0.25 and 0.5, embedding clipping and MAMP; with
--results, also every pretraining checkpoint of the embedded workflow's NTU-60 x-sub runs (after
pretraining). Each row is what `python -m hacm.visualize diagnose` prints for that model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hacm.visualize.masks import diagnose_command

FRESH = [
    ("HA-CM", "hacm", []),
    ("w/o temporal criterion", "hacm", ["temporal_criterion=random"]),
    ("w/o spatial criterion", "hacm", ["spatial_criterion=random"]),
    ("w/o cross grouping", "hacm", ["masking=single", "contrast_weight=0"]),
    ("w/o hyperbolic mapping", "hacm", ["hyperbolic=false"]),
    ("minmax, tau 0.25", "hacm", ["score_scaling=minmax", "score_temperature=0.25"]),
    ("minmax, tau 0.5", "hacm", ["score_scaling=minmax", "score_temperature=0.5"]),
    ("embedding_clip 1", "hacm", ["embedding_clip=1.0"]),
    ("MAMP (T 72, t_patch 3)", "mamp", []),
    ("MAMP (T 120, t_patch 4)", "mamp", ["frames=120", "t_patch=4"]),
]


def row(label: str, diagnostic) -> str:
    cells = {g.group: f"{g.agreement:.3f} ({g.top_decile_keep:.2f} / {g.bottom_decile_keep:.2f})" for g in diagnostic.groups}
    sphere = "—" if diagnostic.on_clip_sphere is None else f"{100 * diagnostic.on_clip_sphere:.1f} %"
    return (f"| {label} | {cells.get('temporal', '—')} | {cells.get('spatial', '—')} | {cells.get('all', '—')} | "
            f"{sphere} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a converted test split")
    parser.add_argument("--results", type=Path, help="the workflow's results folder (pretrained checkpoints)")
    parser.add_argument("--benchmark", default="ntu60_xsub", help="results folder of the checkpoints")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--sequences", type=int, default=40)
    args = parser.parse_args()
    common = dict(data=args.data, sequences=args.sequences, draws=args.draws, seed=0)
    print(f"{args.sequences} body sequences of {args.data}, {args.draws} Gumbel draws each; agreement with random "
          "masking under the same noise (keep rate of the top / bottom score decile; random keeps K/L = 0.097 "
          "or 0.100)\n")
    print("| model | temporal group | spatial group | single group | tokens on the clip sphere |")
    print("|---|---|---|---|---|")
    for label, method, overrides in FRESH:
        diagnostic, _ = diagnose_command(checkpoint=None, method=method, overrides=overrides, **common)
        print(row(f"fresh {label}", diagnostic), flush=True)
    if args.results is not None:
        for checkpoint in sorted((args.results / args.benchmark).glob("*/pretrain/seed*/checkpoint.pt")):
            diagnostic, _ = diagnose_command(checkpoint=checkpoint, method="hacm", overrides=[], **common)
            print(row(f"pretrained {checkpoint.parts[-4]} ({checkpoint.parts[-2]})", diagnostic), flush=True)


if __name__ == "__main__":
    main()
