"""The datasets and benchmarks hacm knows (docs/method.md §1): one registry, torch-free.

Conversion (which stores a dataset yields, how samples are split, which list or split file it needs),
fetch (archive titles, split-file names), `hacm.prepare`, the workflow (its dataset wildcard, the
schema's benchmark names, the table labels) and the synthetic generator all read it. Adding a
benchmark means adding it here (and its split rule in `hacm.data.splits` if it is a new kind).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dataset:
    key: str  # ntu60 | ntu120 | pku1 | pku2: the argument of hacm.fetch / hacm.prepare
    title: str  # as the authors name it
    family: str  # ntu (.skeleton files) | pku (per-video text files and label files)
    num_classes: int  # outputs of a classifier (PKU-MMD: labels 1..51 in both phases, as MAMP and the release)
    missing_list: str | None = None  # NTU: the official list of samples without skeletons


@dataclass(frozen=True)
class Benchmark:
    key: str  # ntu60-xsub: the name in configs, folders and tables
    dataset: str
    label: str  # column heading of the tables
    split: str  # the split rule: performer | camera | setup (parity) | file (the official split file)
    split_files: tuple[str, ...] = ()  # PKU-MMD: accepted split-file names, the download's own first


DATASETS: dict[str, Dataset] = {dataset.key: dataset for dataset in (
    Dataset("ntu60", "NTU RGB+D 60", "ntu", 60, "NTU_RGBD_samples_with_missing_skeletons.txt"),
    Dataset("ntu120", "NTU RGB+D 120", "ntu", 120, "NTU_RGBD120_samples_with_missing_skeletons.txt"),
    Dataset("pku1", "PKU-MMD phase I", "pku", 51),
    Dataset("pku2", "PKU-MMD phase II", "pku", 51),
)}

# PKU-MMD split files: github.com/maoyunyao/MAMP's README names them cross_subject.txt, cross_view.txt,
# cross_subject_v2.txt and cross_view_v2.txt (Split/ of the official download); the README.txt shipped
# with phase I spells them with a hyphen, accepted as aliases.
BENCHMARKS: dict[str, Benchmark] = {benchmark.key: benchmark for benchmark in (
    Benchmark("ntu60-xsub", "ntu60", "NTU-60 x-sub", "performer"),
    Benchmark("ntu60-xview", "ntu60", "NTU-60 x-view", "camera"),
    Benchmark("ntu120-xsub", "ntu120", "NTU-120 x-sub", "performer"),
    Benchmark("ntu120-xset", "ntu120", "NTU-120 x-set", "setup"),
    Benchmark("pku1-xsub", "pku1", "PKU-MMD I x-sub", "file", ("cross_subject.txt", "cross-subject.txt")),
    Benchmark("pku1-xview", "pku1", "PKU-MMD I x-view", "file", ("cross_view.txt", "cross-view.txt")),
    Benchmark("pku2-xsub", "pku2", "PKU-MMD II x-sub", "file", ("cross_subject_v2.txt", "cross-subject_v2.txt")),
    Benchmark("pku2-xview", "pku2", "PKU-MMD II x-view", "file", ("cross_view_v2.txt", "cross-view_v2.txt")),
)}


def benchmarks_of(dataset: str) -> tuple[str, ...]:
    """The benchmark keys a dataset's conversion writes, in registry order."""
    return tuple(key for key, benchmark in BENCHMARKS.items() if benchmark.dataset == dataset)


def datasets_of(family: str) -> tuple[str, ...]:
    return tuple(key for key, dataset in DATASETS.items() if dataset.family == family)
