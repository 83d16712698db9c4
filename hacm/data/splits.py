"""Train / test assignment for every benchmark, with the split-id lists in one place (docs/method.md §1.4, §1.5).

Which rule a benchmark uses is in the registry (`hacm.benchmarks`); the rules and their id lists are here.
"""

from __future__ import annotations

from pathlib import Path

from hacm.benchmarks import BENCHMARKS
from hacm.data.ntu import parse_ntu_name

NTU60_TRAIN_PERFORMERS = frozenset(
    (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
)
NTU120_TRAIN_PERFORMERS = NTU60_TRAIN_PERFORMERS | frozenset(
    (45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86,
     89, 91, 92, 93, 94, 95, 97, 98, 100, 103)
)
NTU60_TRAIN_CAMERAS = frozenset((2, 3))
TRAIN_PERFORMERS = {"ntu60": NTU60_TRAIN_PERFORMERS, "ntu120": NTU120_TRAIN_PERFORMERS}
NTU60_SETUPS = range(1, 18)  # S001..S017; NTU-120 adds S018..S032
NTU60_ACTIONS = range(1, 61)


def is_ntu60_sample(name: str) -> bool:
    """Whether an NTU name belongs to NTU RGB+D 60 (setups 1-17, actions 1-60)."""
    codes = parse_ntu_name(name)
    return codes.setup in NTU60_SETUPS and codes.action in NTU60_ACTIONS


def read_pku_split_file(path: str | Path) -> tuple[frozenset[str], frozenset[str] | None]:
    """Training video ids (line 2) and, when present, test video ids (line 4) of a PKU-MMD split file."""
    lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    if len(lines) < 2:
        raise ValueError(f"{path}: a PKU-MMD split file lists the training videos on its second line")

    def ids(line: str) -> frozenset[str]:
        return frozenset(part.strip() for part in line.split(",") if part.strip())

    train = ids(lines[1])
    test = ids(lines[3]) if len(lines) >= 4 and lines[3].strip() else None
    if not train:
        raise ValueError(f"{path}: no training video ids on line 2")
    return train, test


def assign_split(
    name: str,
    benchmark: str,
    *,
    pku_train: frozenset[str] | None = None,
    pku_test: frozenset[str] | None = None,
) -> str:
    """'train' or 'test' for a sample name under a benchmark.

    NTU names follow SsssCcccPpppRrrrAaaa. For PKU-MMD the name is the video id (`0002-L`,
    `A01N01-L`, optionally followed by `_<interval>`), and the official split file's ids are passed
    as `pku_train` (and `pku_test`, when the file lists test videos: a video in neither is an error).
    """
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; expected one of {', '.join(BENCHMARKS)}")
    rule = BENCHMARKS[benchmark]
    if rule.split == "file":
        if pku_train is None:
            raise ValueError(f"{benchmark} needs the training ids of the official split file")
        video = name.split("_", 1)[0]
        if video in pku_train:
            return "train"
        if pku_test is None or video in pku_test:
            return "test"
        raise ValueError(f"video {video} is in neither list of the {benchmark} split file")
    codes = parse_ntu_name(name)
    if rule.dataset == "ntu60" and not is_ntu60_sample(name):
        raise ValueError(f"{name} is not an NTU RGB+D 60 sample")
    if rule.split == "performer":
        train = codes.performer in TRAIN_PERFORMERS[rule.dataset]
    elif rule.split == "camera":
        train = codes.camera in NTU60_TRAIN_CAMERAS
    elif rule.split == "setup":
        train = codes.setup % 2 == 0
    else:
        raise ValueError(f"{benchmark}: unknown split rule {rule.split!r}")
    return "train" if train else "test"
