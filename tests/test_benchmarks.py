"""The benchmark registry (hacm.benchmarks) is the one list every layer reads: conversion, fetch, the
workflow's schema and wildcards, the tables' labels and the synthetic generator."""

from pathlib import Path

import yaml

from hacm.benchmarks import BENCHMARKS, DATASETS, benchmarks_of
from hacm.data import synthetic
from hacm.fetch.manifest import MANIFESTS
from hacm.data.splits import assign_split

REPO = Path(__file__).resolve().parents[1]


def test_every_benchmark_belongs_to_a_dataset_with_a_known_split_rule():
    assert {benchmark.dataset for benchmark in BENCHMARKS.values()} == set(DATASETS)
    assert {benchmark.split for benchmark in BENCHMARKS.values()} <= {"performer", "camera", "setup", "file"}
    assert len({benchmark.label for benchmark in BENCHMARKS.values()}) == len(BENCHMARKS)
    for key, benchmark in BENCHMARKS.items():
        assert (benchmark.split == "file") == bool(benchmark.split_files) == (DATASETS[benchmark.dataset].family == "pku")
        assert key.startswith(benchmark.dataset + "-")
    assert benchmarks_of("ntu120") == ("ntu120-xsub", "ntu120-xset")


def test_the_workflow_schema_lists_exactly_the_registry():
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    assert schema["definitions"]["benchmark"]["enum"] == list(BENCHMARKS)


def test_fetch_and_the_generator_use_the_registry_names():
    for key, dataset in DATASETS.items():
        names = {archive.name for archive in MANIFESTS[key].archives}
        names |= {auxiliary.name for auxiliary in MANIFESTS[key].auxiliary}
        assert MANIFESTS[key].title == dataset.title
        if dataset.missing_list:
            assert dataset.missing_list in names
        for benchmark in benchmarks_of(key):
            official, *aliases = BENCHMARKS[benchmark].split_files or (None,)
            if official:
                archive = next(archive for archive in MANIFESTS[key].archives if archive.name == official)
                assert tuple(archive.aliases) == tuple(aliases)
    for phase in (1, 2):
        written = set(synthetic.PKU_SPLIT_FILES[phase].values())
        assert written == {BENCHMARKS[b].split_files[0] for b in benchmarks_of(f"pku{phase}")}


def test_split_rules_follow_the_registry():
    name = "S002C003P001R001A010"  # setup 2, camera 3, performer 1 (a training performer)
    assert [assign_split(name, b) for b in ("ntu60-xsub", "ntu60-xview", "ntu120-xsub", "ntu120-xset")] == [
        "train", "train", "train", "train"]
    other = "S003C001P003R001A010"  # setup 3, camera 1, performer 3
    assert [assign_split(other, b) for b in ("ntu60-xsub", "ntu60-xview", "ntu120-xsub", "ntu120-xset")] == [
        "test", "test", "test", "test"]
