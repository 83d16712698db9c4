"""The repository's SLURM profiles: `slurm` (one conda env per rule) and `slurm/no-conda` (the jobs run in
the environment snakemake runs in), equal but for that. Through a real single-node SLURM started here, the
no-conda profile runs a one-benchmark smoke configuration with its evaluations grouped as the profile says,
and the conda profile, where there is no conda, stops with one line before submitting anything.

The cluster tests are skipped only when not root and CI is unset; in CI, and whenever the daemons cannot
start, they fail with the reason.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests.slurm_cluster import write_test_profile

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
CONDA_PROFILE = REPO / "slurm"
NO_CONDA_PROFILE = REPO / "slurm" / "no-conda"
# the smallest configuration with every table (another change may still move it to config/)
SMOKE_CONFIG = next(path for path in (REPO / "config" / "smoke.yaml", REPO / "tests" / "data" / "smoke_config.yaml")
                    if path.exists())
PAPER_CONFIG = REPO / "config" / "paper.yaml"
NO_CONDA_LINE = "software deployment is conda (--profile slurm or --sdm conda) but no `conda` command is on PATH"


def profile(path: Path) -> dict:
    return yaml.safe_load((path / "config.yaml").read_text())


def group_size(document: dict) -> int:
    """The profile's evaluations per group (group-components of evaluate's group)."""
    return document["group-components"][document["groups"]["evaluate"]]


def evaluate_runtime(profile_dir: Path) -> int:
    """evaluate's runtime (minutes) in a profile."""
    return int(profile(profile_dir)["set-resources"]["evaluate"]["runtime"])


def one_benchmark_config(directory: Path) -> Path:
    """The smoke configuration on its first benchmark only: one pretraining and its four evaluations
    (linear for HA-CM and the random encoder, fine-tune, one semi-supervised draw), every table. On the
    test cluster's two CPUs every job runs alone, so each pretraining or evaluation costs time."""
    document = yaml.safe_load(SMOKE_CONFIG.read_text())
    document["methods"] = {"hacm": ["ntu60-xsub"]}
    document["protocols"]["linear"]["benchmarks"] = ["ntu60-xsub"]
    document["protocols"]["transfer"] = {"sources": []}
    document["ablations"] = {"variants": {}}
    path = directory / "one_benchmark.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def path_without_conda() -> str:
    """PATH with no directory that holds a `conda` command (this Python's directory first)."""
    entries = [str(Path(sys.executable).parent)] + os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(entry for entry in dict.fromkeys(entries) if entry and not (Path(entry) / "conda").exists())


def snakemake(*args: str, cwd: Path = REPO, env: dict | None = None, timeout: float = 300):
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


# ------------------------------------------------------------------------------------- the profiles


def test_the_no_conda_profile_is_the_conda_profile_without_conda():
    conda, no_conda = profile(CONDA_PROFILE), profile(NO_CONDA_PROFILE)
    assert conda.pop("software-deployment-method") == "conda"
    assert not {"software-deployment-method", "sdm", "use-conda", "use-apptainer"} & set(no_conda)
    assert no_conda == conda


def test_the_profile_gives_gpu_rules_a_gpu():
    document = profile(CONDA_PROFILE)
    assert document["executor"] == "slurm"
    assert document["set-resources"]["pretrain"]["gpu"] == document["set-resources"]["evaluate"]["gpu"] == 1
    assert "gres" not in str(document.get("default-resources", {}).get("slurm_extra", ""))


def test_the_profile_limits_submissions():
    """Queue etiquette: a bounded number of jobs in the queue and of sbatch calls a minute (Snakemake's
    defaults are unlimited and 100 a second), status checks no more often than the plugin's default."""
    document = profile(CONDA_PROFILE)
    assert 0 < document["jobs"] <= 100
    count, span, unit = re.fullmatch(r"(\d+)/(\d+)([sm])", document["max-jobs-per-timespan"]).groups()
    assert 0 < int(count) / (int(span) * {"s": 1, "m": 60}[unit]) <= 1, "at most one submission a second"
    assert document["slurm-init-seconds-before-status-checks"] >= 40


def test_an_evaluation_group_takes_one_gpu_at_a_time():
    """The evaluations of a group take turns on the job's one GPU: each holds the job's only gpu_slot,
    a per-job (local) resource, so the group asks SLURM for one GPU and the sum of their runtimes."""
    document = profile(CONDA_PROFILE)
    assert document["set-resources"]["evaluate"]["gpu_slot"] == document["resources"]["gpu_slot"] == 1
    assert document["set-resource-scopes"]["gpu_slot"] == "local"
    # evaluate's group is named per benchmark, so a group waits for one benchmark's pretrainings only
    assert "{bench}" in document["groups"]["evaluate"]
    assert 8 <= group_size(document) <= 16


def test_the_evaluations_gpu_slot_leaves_multi_gpu_pretraining_alone(tmp_path):
    """gpu_slot, not gpu, is what the profile pools per job: a pool of gpu=1 would cap every job's GPUs,
    and `--set-resources pretrain:gpu=4` would quietly start one process instead of four."""
    result = snakemake("--profile", "slurm/no-conda", "-n", "-p", "results/ntu60_xsub/hacm/pretrain/seed0/encoder.pt",
                       "--set-resources", "pretrain:gpu=4", "--directory", str(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "--nproc_per_node=4" in result.stdout + result.stderr


def test_the_paper_plan_submits_its_evaluations_in_groups(tmp_path):
    """`--profile slurm/no-conda` from the repository root plans the paper's matrix: its evaluations are
    chunked per benchmark into groups of at most group-components, one SLURM job each."""
    result = snakemake("--profile", "slurm/no-conda", "-n", "all_tables", "--configfile", str(PAPER_CONFIG),
                       "--directory", str(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    output = result.stdout + result.stderr
    evaluations = int(re.search(r"^evaluate\s+(\d+)$", output, re.M).group(1))
    # a group job's header, then its members indented by four spaces (other jobs are not indented)
    parts = re.split(r"^.*Group job (\S+) \(jobs in lexicogr\. order\):$", output, flags=re.M)
    size = group_size(profile(NO_CONDA_PROFILE))
    per_bench, groups = Counter(), 0
    for group, text in zip(parts[1::2], parts[2::2]):
        count = len(re.findall(r"^    rule evaluate:$", text, re.M))
        benches = set(re.findall(r"^        wildcards: bench=(\w+),", text, re.M))
        assert benches == {group.removeprefix("evaluations_")} and 0 < count <= size, (group, benches, count)
        per_bench[group] += count
        groups += 1
    assert sum(per_bench.values()) == evaluations >= 200
    assert groups == sum(math.ceil(n / size) for n in per_bench.values()) < evaluations / 8
    print(f"\npaper plan: {evaluations} evaluations in {groups} SLURM jobs ({dict(per_bench)})")


def test_without_conda_the_conda_profile_says_so_in_one_line(tmp_path):
    """Where there is no conda, `--profile slurm` stops at once with one line saying what is wrong and
    what to run instead, not inside Snakemake's `conda info` after the DAG is built."""
    result = snakemake("--profile", "slurm", "-n", "all_tables", "--directory", str(tmp_path),
                       env=dict(os.environ, PATH=path_without_conda()))
    assert result.returncode == 1
    lines = (result.stdout + result.stderr).splitlines()
    message = [line for line in lines if line.startswith(NO_CONDA_LINE)]
    assert len(message) == 1 and "--profile slurm/no-conda" in message[0], lines
    assert "conda info" not in result.stdout + result.stderr


def test_with_a_conda_command_the_check_leaves_conda_to_snakemake(tmp_path):
    """The check fires only where there is no `conda` command at all: a `conda` that is not a working
    one (it fails every call) gets past it to Snakemake's own check of the installation."""
    broken = tmp_path / "bin" / "conda"
    broken.parent.mkdir()
    broken.write_text("#!/bin/sh\necho 'not a conda' >&2\nexit 1\n")
    broken.chmod(0o755)
    result = snakemake("--profile", "slurm", "-n", "all_tables", "--directory", str(tmp_path / "run"),
                       env=dict(os.environ, PATH=f"{broken.parent}{os.pathsep}{path_without_conda()}"))
    assert result.returncode == 1
    assert NO_CONDA_LINE not in result.stdout + result.stderr
    assert "Error running conda info" in result.stdout + result.stderr


# ------------------------------------------------------------------------------- a real slurmctld


def wait_for_accounting(cluster, done, *, seconds: float = 15):
    """sacct's jobs once done(jobs) holds, or after *seconds* (slurmdbd records a job's end a moment late)."""
    deadline = time.monotonic() + seconds
    while True:
        jobs = cluster.sacct_jobs(steps=True)
        if done(jobs) or time.monotonic() > deadline:
            return jobs
        time.sleep(0.5)


def test_workflow_through_sbatch_without_conda(tmp_path, cluster):
    """The one-benchmark smoke configuration through sbatch with slurm/no-conda (the local cluster's
    partition and limits laid over it): everything completes, the tables are written, and the evaluations
    go in groups: fewer SLURM jobs than evaluations, each asking for one GPU and the sum of its
    evaluations' runtimes, which run one after another (one job step each)."""
    workdir = tmp_path / "run"
    workdir.mkdir()
    # the node's GPU is a placeholder: the jobs train on the CPU, on purpose (hacm.train.environment)
    test_profile = write_test_profile(tmp_path / "profile", NO_CONDA_PROFILE)
    started = time.monotonic()
    run = snakemake("--profile", str(test_profile), "--snakefile", str(REPO / "Snakefile"), "--directory",
                    str(workdir), "all_tables", "--configfile", str(one_benchmark_config(tmp_path)),
                    cwd=workdir, env=dict(cluster.env, HACM_DEVICE="cpu"), timeout=900)
    assert run.returncode == 0, f"snakemake failed:\n{run.stdout[-4000:]}\n{run.stderr[-6000:]}"
    elapsed = time.monotonic() - started
    evaluations = [path for path in workdir.glob("results/*/*/*/seed*/metrics.json")
                   if path.parent.parent.name != "pretrain"]
    everything = wait_for_accounting(cluster, lambda jobs: all(job.state == "COMPLETED" for job in jobs))
    print(f"\nworkflow through SLURM: {elapsed:.0f} s (the cluster started in {cluster.start_seconds:.0f} s)")
    assert {job.job_id: job.state for job in everything if job.state != "COMPLETED"} == {}
    jobs = [job for job in everything if "." not in job.job_id]  # allocations, not their steps
    by_rule = Counter(job.rule for job in jobs)
    grouped = [job for job in jobs if job.rule.startswith("evaluations_")]
    assert by_rule["evaluate"] == 0 and 0 < len(grouped) < len(evaluations), by_rule
    assert {"synthetic_dataset", "pretrain", "tables"} <= set(by_rule), by_rule
    per_evaluation = evaluate_runtime(test_profile)
    for job in grouped:
        assert "gres/gpu=1" in job.alloc_tres, job
        # one job step per evaluation, each starting after the one before it ended; the job's time
        # limit is their runtimes' sum
        steps = sorted((step for step in everything if re.fullmatch(rf"{job.job_id}\.\d+", step.job_id)),
                       key=lambda step: step.start)
        assert job.time_limit_min == per_evaluation * len(steps), (job, steps)
        assert all(later.start >= earlier.end for earlier, later in zip(steps, steps[1:])), steps
    assert sum(job.time_limit_min for job in grouped) == per_evaluation * len(evaluations)
    assert "gres/gpu=1" in next(job for job in jobs if job.rule == "pretrain").alloc_tres
    assert all("gres/gpu" not in job.alloc_tres for job in jobs if job.rule == "tables")
    for name in ("linear", "finetune", "semi", "transfer", "ablations"):
        assert (workdir / "results" / "tables" / f"{name}.md").exists()


def test_the_conda_profile_without_conda_submits_nothing(tmp_path, cluster):
    """`--profile slurm` (conda kept) against the cluster, with no conda on PATH: one line, exit 1, and
    not one sbatch."""
    before = len(cluster.sacct_jobs())
    test_profile = write_test_profile(tmp_path / "profile", CONDA_PROFILE)
    assert profile(test_profile)["software-deployment-method"] == "conda"
    run = snakemake("--profile", str(test_profile), "--snakefile", str(REPO / "Snakefile"), "--directory",
                    str(tmp_path / "run"), "all_tables", "--configfile", str(one_benchmark_config(tmp_path)),
                    cwd=tmp_path, env=dict(cluster.env, PATH=path_without_conda()))
    assert run.returncode == 1
    assert sum(line.startswith(NO_CONDA_LINE) for line in (run.stdout + run.stderr).splitlines()) == 1
    time.sleep(1)
    assert len(cluster.sacct_jobs()) == before


def continuation_config(directory: Path) -> Path:
    """One tiny pretraining (HA-CM, synthetic NTU-60 x-sub) of 2 epochs of a few steps, every step logged,
    no monitor, and nothing else."""
    document = {
        "dataset": "synthetic", "seeds": [0],
        "pretrain": {"model": {"frames": 24, "t_patch": 3, "dim": 32, "depth": 1, "heads": 4, "decoder_dim": 32,
                               "decoder_depth": 1, "decoder_heads": 4},
                     "data": {"batch_size": 120}, "optim": {"epochs": 2, "warmup_epochs": 1, "lr": 2.0e-3},
                     "monitor": {"knn_every": 0, "log_every": 1}},
        "evaluate": {},
        "methods": {"hacm": ["ntu60-xsub"]},
        "protocols": {"linear": {"benchmarks": []}, "finetune": {"benchmarks": []}, "semi": {"benchmarks": []},
                      "transfer": {"sources": []}},
        "ablations": {"variants": {}},
    }
    path = directory / "continuation.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def test_a_pretraining_longer_than_its_time_limit_continues_until_done(tmp_path, cluster):
    """Issue 25, point 3: a pretraining job with a 1-minute time limit. Each run of the job reads its end
    from SLURM and, once the end is nearer than its margin, saves a checkpoint between two steps and
    requeues itself. With a margin as long as the limit, every run stops after its first step (or after
    an epoch's end), whatever the machine's speed: two epochs of two steps take six runs of one SLURM job,
    which completes with the encoder of an uninterrupted run bit for bit, a log holding every step once,
    and every run's lines in the one file SLURM writes. SLURM holds a requeued job for the credential
    lifetime before starting it again: the test cluster's is 10 s (start_cluster.sh; SLURM's default 120)."""
    workdir = tmp_path / "run"
    workdir.mkdir()
    test_profile = write_test_profile(tmp_path / "profile", NO_CONDA_PROFILE)
    # pretrain's runtime in the profile itself: `--set-resources` on the command line would replace the
    # profile's whole set-resources (its --requeue / --open-mode among them), not add to it
    document = profile(test_profile)
    document["set-resources"]["pretrain"]["runtime"] = 1
    (test_profile / "config.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    config = continuation_config(tmp_path)
    run_folder = workdir / "results" / "ntu60_xsub" / "hacm" / "pretrain" / "seed0"
    env = dict(cluster.env, HACM_DEVICE="cpu", HACM_STOP_MARGIN_S="60")
    started = time.monotonic()
    run = snakemake("--profile", str(test_profile), "--snakefile", str(REPO / "Snakefile"), "--directory",
                    str(workdir), str(run_folder.relative_to(workdir) / "encoder.pt"), "--configfile", str(config),
                    "--slurm-keep-successful-logs", cwd=workdir, env=env, timeout=1200)
    elapsed = time.monotonic() - started
    assert run.returncode == 0, f"snakemake failed:\n{run.stdout[-4000:]}\n{run.stderr[-6000:]}"
    history = [json.loads(line) for line in (run_folder / "history.jsonl").read_text().splitlines()]
    stops = [r for r in history if r["kind"] == "stopped"]
    parts = [r for r in history if r["kind"] == "environment"]
    print(f"\na pretraining of {len(parts)} runs of one SLURM job: {elapsed:.0f} s")
    assert len(stops) >= 3 and all("time limit is near" in r["reason"] for r in stops), stops
    assert len(parts) == len(stops) + 1 and len({r["slurm_job_id"] for r in parts}) == 1
    steps = [r["step"] for r in history if r["kind"] == "step"]
    last_epoch = [r for r in history if r["kind"] == "epoch"][-1]
    assert last_epoch["epoch"] == 2 and steps == list(range(last_epoch["step"] + 1))  # every step once
    assert (run_folder / "metrics.jsonl").read_text() == (run_folder / "history.jsonl").read_text()
    # requeued, never resubmitted: every run was the one SLURM job, which sacct shows completed
    job_id = parts[0]["slurm_job_id"]
    assert [(job.rule, job.state) for job in cluster.sacct_jobs() if job.job_id == job_id] == [("pretrain", "COMPLETED")]
    # the file SLURM writes for the job holds every run's lines (--open-mode=append)
    slurm_logs = list((workdir / ".snakemake" / "slurm_logs").glob("rule_pretrain/**/*.log"))
    assert len(slurm_logs) == 1, slurm_logs
    text = slurm_logs[0].read_text()
    assert text.count("hacm.pretrain: epoch 2/2 done") == 1 and text.count(": resuming at epoch") == len(stops)
    # the same run uninterrupted, on as many threads as the job had
    reference = tmp_path / "uninterrupted"
    straight = subprocess.run(
        [sys.executable, "-m", "hacm.pretrain", "--config", str(run_folder / "run.yaml"), "--data",
         str(workdir / "resources" / "data" / "synthetic" / "ntu60-xsub"), "--out", str(reference), "--no-progress"],
        env={**os.environ, "OMP_NUM_THREADS": str(parts[0]["cpu_threads"])}, capture_output=True, text=True,
        timeout=600)
    assert straight.returncode == 0, straight.stderr
    import torch

    continued = torch.load(run_folder / "encoder.pt", weights_only=True)["state_dict"]
    uninterrupted = torch.load(reference / "encoder.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(continued[key], uninterrupted[key]) for key in uninterrupted)
