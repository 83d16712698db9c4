"""The Snakemake workflow: lint, validation, the paper's plan, and the smoke config run end to end.

Each run uses the repository's Snakefile with a fresh working directory (results, resources and
Snakemake's metadata there), so the tests never touch the checkout's own results.
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SMOKE_CONFIG = REPO / "config" / "smoke.yaml"
TABLES = ("linear", "finetune", "semi", "transfer", "ablations")


def snakemake(*args: str, workdir: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), *args],
        capture_output=True, text=True, timeout=timeout,
    )


def planned_jobs(result: subprocess.CompletedProcess) -> dict[str, int]:
    """The 'Job stats' table of a dry run: rule -> number of jobs ({} when nothing is to be done)."""
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    text = result.stdout + result.stderr
    if "Nothing to be done" in text:
        return {}
    table = text.split("Job stats:", 1)[1]
    return {name: int(count) for name, count in re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M) if name != "total"}


def write_config(path: Path, document: dict) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def test_lint_is_clean(tmp_path):
    result = snakemake("--lint", workdir=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations" in result.stdout + result.stderr


def test_paper_config_plans_every_job_without_data(tmp_path):
    jobs = planned_jobs(snakemake("-n", "all_tables", "--configfile", str(REPO / "config/paper.yaml"), workdir=tmp_path))
    paper = yaml.safe_load((REPO / "config/paper.yaml").read_text())
    seeds = len(paper["seeds"])
    methods, protocols = paper["methods"], paper["protocols"]
    ablations = len(paper["ablations"]["variants"])
    assert set(methods["hacm"]) == {"ntu60-xsub", "ntu60-xview", "ntu120-xsub", "ntu120-xset", "pku1-xsub", "pku2-xsub"}
    assert jobs["fetch"] == jobs["prepare"] == 4  # NTU-60, NTU-120, PKU-MMD I and II
    assert jobs["pretrain"] == seeds * (sum(map(len, methods.values())) + ablations)
    linear = sum(len(methods.get(m, protocols["linear"]["benchmarks"])) for m in protocols["linear"]["methods"])
    finetune = len(protocols["finetune"]["benchmarks"]) * len(protocols["finetune"]["methods"])
    semi = protocols["semi"]
    semi_runs = len(semi["benchmarks"]) * len(semi["fractions"]) * semi["draws"] * len(semi["methods"])
    transfer = len(protocols["transfer"]["sources"]) * len(protocols["transfer"]["methods"])
    assert jobs["evaluate"] == seeds * (linear + finetune + semi_runs + transfer + ablations)
    assert jobs["tables"] == 1 and "synthetic_dataset" not in jobs


def test_unknown_keys_are_rejected_with_their_name(tmp_path):
    smoke = yaml.safe_load(SMOKE_CONFIG.read_text())
    bad_top = write_config(tmp_path / "top.yaml", {**smoke, "epochs": 3})
    result = snakemake("-n", "--configfile", str(bad_top), workdir=tmp_path)
    assert result.returncode != 0 and "'epochs' was unexpected" in result.stdout + result.stderr
    nested = yaml.safe_load(SMOKE_CONFIG.read_text())
    nested["pretrain"]["model"]["dimension"] = 8
    result = snakemake("-n", "--configfile", str(write_config(tmp_path / "nested.yaml", nested)), workdir=tmp_path)
    assert result.returncode != 0 and "dimension" in result.stdout + result.stderr


def test_a_config_must_state_its_stages_and_booleans_are_booleans(tmp_path):
    """Reliability probe: a config without `pretrain:` planned the paper's 400-epoch model on any data, and an
    ablation's `hyperbolic: "false"` passed the DAG-time check and trained the hyperbolic model."""
    smoke = yaml.safe_load(SMOKE_CONFIG.read_text())
    without = write_config(tmp_path / "without.yaml", {key: value for key, value in smoke.items() if key != "pretrain"})
    result = snakemake("-n", "--configfile", str(without), workdir=tmp_path)
    assert result.returncode != 0 and "'pretrain' is a required property" in result.stdout + result.stderr
    text = yaml.safe_load(SMOKE_CONFIG.read_text())
    text["ablations"]["variants"] = {"euclidean": {"label": "x", "pretrain": {"model": {"hyperbolic": "false"}}}}
    result = snakemake("-n", "--configfile", str(write_config(tmp_path / "text.yaml", text)), workdir=tmp_path)
    assert result.returncode != 0 and "expected true or false" in result.stdout + result.stderr

    # Reliability probe 2 (N30): a min_lr above lr passed the DAG-time check, for pretraining and evaluation
    for stage, section in (("pretrain", "optim"), ("evaluate", "finetune")):
        climbing = yaml.safe_load(SMOKE_CONFIG.read_text())
        climbing[stage].setdefault(section, {})["min_lr"] = 10
        result = snakemake("-n", "--configfile", str(write_config(tmp_path / f"{stage}.yaml", climbing)),
                           workdir=tmp_path)
        assert result.returncode != 0 and f"{section}.min_lr: must not exceed" in result.stdout + result.stderr


def test_an_ablation_target_builds_only_its_row(tmp_path):
    jobs = planned_jobs(snakemake("-n", "ablation_euclidean", workdir=tmp_path))
    assert jobs == {"synthetic_dataset": 1, "pretrain_config": 1, "pretrain": 1, "evaluate_config": 1, "evaluate": 1,
                    "ablation_euclidean": 1}


def test_a_missing_archive_fails_with_what_to_get(tmp_path):
    config = write_config(tmp_path / "real.yaml", {
        "dataset": "real", "pretrain": {}, "evaluate": {}, "methods": {"hacm": ["pku1-xsub"]},
        "protocols": {"linear": {"benchmarks": ["pku1-xsub"], "methods": ["hacm"]},
                      "finetune": {"benchmarks": []}, "semi": {"benchmarks": []}, "transfer": {"sources": []}},
    })
    result = snakemake("--cores", "1", "resources/raw/pku1/FETCHED.json", "--configfile", str(config),
                       workdir=tmp_path, timeout=300)
    assert result.returncode != 0
    log = (tmp_path / "results/logs/data/fetch_pku1.log").read_text()
    assert "resources/archives" in log and "missing" in log.lower(), log


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("workflow")
    result = snakemake("--cores", "2", "all_tables", "--configfile", str(SMOKE_CONFIG), workdir=workdir)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return workdir


def test_smoke_config_builds_every_table(smoke_run):
    tables = smoke_run / "results" / "tables"
    for name in TABLES:
        for suffix in ("csv", "md", "tex"):
            assert (tables / f"{name}.{suffix}").stat().st_size > 0
    assert (tables / "pretraining.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(tables / "linear.csv") as handle:
        rows = list(csv.DictReader(handle))
    ours = {(r["row"], r["column"]): r for r in rows if r["n"]}
    assert {("hacm", "ntu60-xsub"), ("random", "ntu60-xsub"), ("hacm", "pku2-xsub"), ("random", "pku2-xsub")} <= set(ours)
    not_run = [r for r in rows if r["row"] == "mae"]  # in the table, never pretrained
    assert len(not_run) == 6 and {r["status"] for r in not_run} == {"not run"}  # the paper's six columns
    run_config = yaml.safe_load((smoke_run / "results/ntu60_xsub/hacm-euclidean/pretrain/seed0/run.yaml").read_text())
    assert run_config["model"]["hyperbolic"] is False and run_config["method"] == "hacm"


def test_an_unchanged_target_does_nothing(smoke_run):
    assert planned_jobs(snakemake("-n", "all_tables", "--configfile", str(SMOKE_CONFIG), workdir=smoke_run)) == {}


def test_one_hyperparameter_reruns_exactly_the_runs_it_reaches(smoke_run, tmp_path):
    changed = yaml.safe_load(SMOKE_CONFIG.read_text())
    changed["evaluate"]["linear"]["epochs"] = 3
    config = write_config(tmp_path / "changed.yaml", changed)
    jobs = planned_jobs(snakemake("-n", "all_tables", "--configfile", str(config), workdir=smoke_run))
    linear_runs = 2 * 2 + 1  # (hacm, random) x (ntu60-xsub, pku2-xsub) and the ablation
    assert jobs == {"evaluate_config": linear_runs, "evaluate": linear_runs, "tables": 1, "all_tables": 1}
    changed = yaml.safe_load(SMOKE_CONFIG.read_text())
    changed["ablations"]["variants"]["euclidean"]["pretrain"]["model"]["curvature"] = 2.0
    config = write_config(tmp_path / "ablation.yaml", changed)
    jobs = planned_jobs(snakemake("-n", "ablation_euclidean", "--configfile", str(config), workdir=smoke_run))
    assert jobs == {"pretrain_config": 1, "pretrain": 1, "evaluate": 1, "ablation_euclidean": 1}


def test_report_bundles_tables_and_figures(smoke_run):
    result = snakemake("--report", "report.html", "--configfile", str(SMOKE_CONFIG), workdir=smoke_run)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    html = (smoke_run / "report.html").read_text(errors="replace")
    for name in ("linear.md", "ablations.tex", "pretraining.png", "loss_curve.png"):
        assert name in html


def test_two_gpus_per_job_give_the_encoder_of_one(smoke_run, tmp_path):
    """`--set-resources pretrain:gpu=2` starts the pretraining under torchrun with two processes (gloo on
    a CPU), each on half the global batch: the encoder equals the one-process encoder of the smoke run."""
    import shutil

    import torch

    shutil.copytree(smoke_run / "resources", tmp_path / "resources")  # the data: only the pretraining runs
    target = "results/ntu60_xsub/hacm/pretrain/seed0/encoder.pt"
    result = snakemake("--cores", "2", target, "--configfile", str(SMOKE_CONFIG), "--set-resources", "pretrain:gpu=2",
                       "-p", workdir=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "torch.distributed.run --standalone --nproc_per_node=2 -m hacm.pretrain" in result.stdout + result.stderr
    log = (tmp_path / "results/logs/ntu60_xsub/hacm/pretrain/seed0.log").read_text()
    single = torch.load(smoke_run / target, weights_only=True)["state_dict"]
    parallel = torch.load(tmp_path / target, weights_only=True)["state_dict"]
    assert single.keys() == parallel.keys(), log[-2000:]
    for key in single:
        torch.testing.assert_close(parallel[key], single[key], atol=2e-5, rtol=1e-4, msg=key)


def test_the_multi_node_form_starts_torchrun_on_each_node_through_srun(tmp_path):
    """gpu=8 over nodes=2: srun starts one torchrun per node, four processes each, meeting on the first node."""
    result = snakemake("-n", "-p", "results/ntu60_xsub/hacm/pretrain/seed0/encoder.pt", "--set-resources",
                       "pretrain:gpu=8", "pretrain:nodes=2", workdir=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    command = next(line for line in (result.stdout + result.stderr).splitlines() if "-m hacm.pretrain" in line)
    for part in ("srun --nodes=2 --ntasks-per-node=1", "--nnodes=2", "--nproc_per_node=4", "--rdzv_backend=c10d",
                 "SLURM_JOB_NODELIST", "--rdzv_id=$SLURM_JOB_ID"):
        assert part in command, command
    odd = snakemake("-n", "results/ntu60_xsub/hacm/pretrain/seed0/encoder.pt", "--set-resources", "pretrain:gpu=3",
                    "pretrain:nodes=2", workdir=tmp_path)
    assert odd.returncode != 0 and "must be a multiple of nodes=2" in odd.stdout + odd.stderr


def test_an_imported_dataset_is_converted_by_its_own_rule_and_feeds_the_runs(tmp_path):
    """dataset: imported: each benchmark's stores come from the file `imports` names (here a small
    CTR-GCN-style .npz), through `hacm.prepare import`; nothing is fetched."""
    import numpy as np

    rng = np.random.default_rng(0)
    npz = tmp_path / "NTU60_XSub.npz"
    x = np.zeros((40, 30, 150), dtype=np.float32)
    x[:, :20] = rng.normal(size=(40, 20, 150))
    labels = np.eye(60, dtype=np.float32)[np.arange(40) % 60]
    np.savez(npz, x_train=x[:30], y_train=labels[:30], x_test=x[30:], y_test=labels[30:])
    document = yaml.safe_load(SMOKE_CONFIG.read_text())
    document.update(dataset="imported", imports={"ntu60-xsub": str(npz)}, methods={"hacm": ["ntu60-xsub"]},
                    protocols={"linear": {"benchmarks": ["ntu60-xsub"], "methods": ["hacm"]},
                               "finetune": {"benchmarks": []}, "semi": {"benchmarks": []},
                               "transfer": {"sources": []}},
                    ablations={"variants": {}})
    document.setdefault("prepare", {})["max_bad_fraction"] = 0.1
    config = write_config(tmp_path / "imported.yaml", document)
    planned = snakemake("-n", "-p", "all_tables", "--configfile", str(config), workdir=tmp_path / "run")
    jobs = planned_jobs(planned)
    assert jobs["import_data"] == 1 and "fetch" not in jobs and "prepare" not in jobs
    assert "--max-bad-fraction 0.1 " in planned.stdout  # the configured bound, as for the other data rules
    report = "resources/data/imported/ntu60-xsub/report.json"
    result = snakemake("--cores", "1", report, "--configfile", str(config), workdir=tmp_path / "run")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / "run" / "resources/data/imported/ntu60-xsub/ntu60-xsub/train/frames.npy").is_file()
    plan = snakemake("--cores", "1", "results/tables/plan.json", "--configfile", str(config), workdir=tmp_path / "run")
    assert plan.returncode == 0, plan.stdout[-3000:] + plan.stderr[-3000:]  # the tables' plan accepts it
    document["imports"] = {}
    missing = snakemake("-n", "all_tables", "--configfile", str(write_config(tmp_path / "none.yaml", document)),
                        workdir=tmp_path / "run2")
    assert missing.returncode != 0 and "`imports` names no file for ntu60-xsub" in missing.stdout + missing.stderr
