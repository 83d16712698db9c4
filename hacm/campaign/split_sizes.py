"""How many samples a benchmark's training and test splits hold: from its converted stores, else known.

A job's `--data` folder holds `train/` and `test/` stores once the `prepare` rule has run; their
`info.json` counts the samples (`hacm.data.storage`). Before that, the official NTU RGB+D split sizes
below stand in. Torch-free.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from hacm.benchmarks import BENCHMARKS

# Official NTU RGB+D split sizes, after the official missing-skeleton samples are removed. Derived here, not
# copied from a paper: the names of MAMP's data/ntu{,120}/statistics/skes_available_name.txt (maoyunyao/MAMP
# @ 09e6252; 56,578 = 56,880 - 302 and 113,945 = 114,480 - 535 names, the official lists of
# shahroudy/NTURGB-D, hacm/fetch/lists/) assigned by hacm.data.splits.assign_split. They equal the counts
# hacm.prepare wrote in the full-size rehearsal (benchmarks/results/rehearsal_2026-12-03.json, rehearsal-ntu_2026-12-03.json).
# PKU-MMD has no entry: its page gives phase I's 21,545 actions in all but no split sizes, and no source
# with the x-sub / x-view sizes of either phase could be read; its jobs are estimated once its stores exist.
OFFICIAL_SPLIT_SIZES: dict[str, tuple[int, int]] = {
    "ntu60-xsub": (40_091, 16_487),
    "ntu60-xview": (37_646, 18_932),
    "ntu120-xsub": (63_026, 50_919),
    "ntu120-xset": (54_468, 59_477),
}


@dataclass(frozen=True)
class SplitSizes:
    train: int
    test: int | None  # None: the benchmark has no test store (pretraining then runs no kNN monitor)
    source: str  # "stores" or "official"
    train_dir: Path | None = None  # the training store, when it exists (its labels.npy: per-class counts)


def _store_samples(store: Path) -> int | None:
    try:
        return int(json.loads((store / "info.json").read_text())["samples"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def split_sizes(data_dir: Path, benchmark: str | None) -> SplitSizes | None:
    """The sizes of `data_dir`'s splits (a job's --data folder, relative to the working directory):
    its stores when converted, else the official sizes of `benchmark`, else None (not known)."""
    train = _store_samples(data_dir / "train")
    if train is not None:
        return SplitSizes(train=train, test=_store_samples(data_dir / "test"), source="stores",
                          train_dir=data_dir / "train")
    synthetic = data_dir.parent.name == "synthetic"  # its size depends on the generator: only its stores tell
    if benchmark in OFFICIAL_SPLIT_SIZES and not synthetic:
        return SplitSizes(*OFFICIAL_SPLIT_SIZES[benchmark], source="official")
    return None


def benchmark_of_data_dir(data_dir: Path) -> str | None:
    """ntu60-xsub for resources/data/ntu60/ntu60-xsub (the data folders end in the benchmark key)."""
    return data_dir.name if data_dir.name in BENCHMARKS else None
