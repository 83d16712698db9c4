"""Running a part of the paper campaign: which jobs each subset target plans (dry runs of config/paper.yaml).

benchmark_<key>: that benchmark's pretrainings and the linear, fine-tuning and semi-supervised evaluations
of its encoders on it, with its dataset's data jobs only; protocol_<kind>: one protocol's table cells and the
pretrainings they need; ablation_<name>: one ablation row.
"""

from __future__ import annotations

from collections import Counter

import pytest
import yaml

from hacm.campaign.jobs import planned_jobs
from hacm.runs import Protocol
from tests.conftest import REPO

PAPER = REPO / "config" / "paper.yaml"


def plan(target: str, workdir) -> list:
    return planned_jobs(["-s", str(REPO / "Snakefile"), "--directory", str(workdir), target, "--configfile",
                         str(PAPER)]).jobs


def runs(jobs, rule: str) -> set[tuple[str, ...]]:
    return {tuple(job.wildcards.values()) for job in jobs if job.rule == rule}


@pytest.fixture(scope="module")
def paper():
    return yaml.safe_load(PAPER.read_text())


def test_one_benchmark_plans_its_own_runs_only(paper, tmp_path):
    jobs = plan("benchmark_ntu60-xsub", tmp_path)
    seeds = len(paper["seeds"])
    pretrained = runs(jobs, "pretrain")
    assert {(bench, method) for bench, method, _ in pretrained} == {("ntu60_xsub", m) for m in ("hacm", "mae", "mamp")}
    assert len(pretrained) == 3 * seeds  # no ablation, no other benchmark
    assert {job.wildcards["dataset"] for job in jobs if job.rule in ("fetch", "prepare")} == {"ntu60"}
    evaluations = runs(jobs, "evaluate")
    assert {bench for bench, *_ in evaluations} == {"ntu60_xsub"}
    kinds = Counter(Protocol.parse(protocol).kind for _, _, protocol, _ in evaluations)
    semi = paper["protocols"]["semi"]
    assert kinds == {"linear": 4 * seeds, "finetune": 4 * seeds,
                     "semi": len(semi["fractions"]) * semi["draws"] * len(semi["methods"]) * seeds}
    assert not any(job.rule.startswith("tables") for job in jobs)


def test_a_benchmark_without_semi_or_finetune_runs_plans_its_linear_cells(tmp_path):
    jobs = plan("benchmark_pku1-xsub", tmp_path)
    assert {job.wildcards["dataset"] for job in jobs if job.rule == "prepare"} == {"pku1"}
    assert {protocol for _, _, protocol, _ in runs(jobs, "evaluate")} == {"linear"}
    assert {bench for bench, _, _ in runs(jobs, "pretrain")} == {"pku1_xsub"}


def test_one_protocol_plans_its_table_cells_and_the_encoders_they_need(paper, tmp_path):
    jobs = plan("protocol_linear", tmp_path)
    seeds = len(paper["seeds"])
    assert {protocol for _, _, protocol, _ in runs(jobs, "evaluate")} == {"linear"}
    assert len(runs(jobs, "evaluate")) == 6 * 4 * seeds  # six benchmarks x (hacm, mae, mamp, random)
    assert not any("-" in method for _, method, _ in runs(jobs, "pretrain"))  # the ablations are their own targets
    transfer = plan("protocol_transfer", tmp_path)
    evaluated = runs(transfer, "evaluate")
    assert {(bench, protocol) for bench, _, protocol, _ in evaluated} == {
        ("pku2_xsub", "transfer-from-ntu60_xsub"), ("pku2_xsub", "transfer-from-ntu120_xsub")}
    # The sources' encoders, not the target's: no pretraining on PKU-MMD II.
    assert {bench for bench, _, _ in runs(transfer, "pretrain")} == {"ntu60_xsub", "ntu120_xsub"}


def test_one_ablation_plans_its_row(tmp_path):
    jobs = plan("ablation_euclidean", tmp_path)
    assert runs(jobs, "pretrain") == {("ntu60_xsub", "hacm-euclidean", seed) for seed in ("0", "1", "2")}
    assert {(method, protocol) for _, method, protocol, _ in runs(jobs, "evaluate")} == {("hacm-euclidean", "linear")}
