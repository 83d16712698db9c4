"""The project's workflow through real sbatch: `snakemake --profile slurm` (the repository's profile,
with the local cluster's partition and limits and conda off) on a single-node SLURM started here.

Skipped only when not root and CI is unset; in CI, and whenever the daemons cannot start, it fails
with the reason.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.slurm_cluster import SlurmStartError, local_slurm, require_slurm_prerequisites, write_test_profile

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "tests" / "data" / "slurm_config.yaml"
SUBMITTED_RULES = {"synthetic_dataset", "pretrain", "evaluate", "tables"}  # the others are local rules


def test_the_profile_gives_gpu_rules_a_gpu():
    profile = yaml.safe_load((REPO / "slurm" / "config.yaml").read_text())
    assert profile["executor"] == "slurm" and profile["software-deployment-method"] == "conda"
    assert profile["set-resources"]["pretrain"]["gpu"] == profile["set-resources"]["evaluate"]["gpu"] == 1
    assert "gres" not in str(profile.get("default-resources", {}).get("slurm_extra", ""))


def test_profile_dry_run_from_the_repository_root(tmp_path):
    """`snakemake --profile slurm -n all_tables` from the root. Snakemake checks the conda installation
    even for a dry run; where there is no conda (CI here), the same profile without conda deployment."""
    profile = "slurm"
    if shutil.which("conda") is None:
        document = yaml.safe_load((REPO / "slurm" / "config.yaml").read_text())
        document.pop("software-deployment-method")
        (tmp_path / "slurm").mkdir()
        (tmp_path / "slurm" / "config.yaml").write_text(yaml.safe_dump(document))
        profile = str(tmp_path / "slurm")
    result = subprocess.run([sys.executable, "-m", "snakemake", "--profile", profile, "-n", "all_tables",
                             "--directory", str(tmp_path / "run")],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "all_tables" in result.stdout + result.stderr


def test_workflow_through_sbatch(tmp_path):
    require_slurm_prerequisites()
    workdir = tmp_path / "run"
    workdir.mkdir()
    profile = write_test_profile(tmp_path / "profile", REPO / "slurm" / "config.yaml")
    started = time.monotonic()
    try:
        with local_slurm(tmp_path / "cluster") as cluster:
            run = subprocess.run(
                [sys.executable, "-m", "snakemake", "--profile", str(profile), "--snakefile", str(REPO / "Snakefile"),
                 "--directory", str(workdir), "all_tables", "--configfile", str(CONFIG)],
                cwd=workdir, env=cluster.env, capture_output=True, text=True, timeout=900,
            )
            assert run.returncode == 0, f"snakemake failed:\n{run.stdout[-4000:]}\n{run.stderr[-6000:]}"
            deadline = time.monotonic() + 15
            while True:
                states = {job.rule: job.state for job in cluster.sacct_jobs()}
                if all(states.get(rule) == "COMPLETED" for rule in SUBMITTED_RULES) or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            gpu_jobs = {job.rule: job.alloc_tres for job in cluster.sacct_jobs()}
    except SlurmStartError as error:
        pytest.fail(f"the local SLURM cluster did not start: {error}")
    print(f"\nworkflow through SLURM: {time.monotonic() - started:.0f} s including the cluster's start and stop")
    assert {rule: states.get(rule) for rule in SUBMITTED_RULES} == dict.fromkeys(SUBMITTED_RULES, "COMPLETED"), states
    assert "gres/gpu=1" in gpu_jobs["pretrain"] and "gres/gpu" not in gpu_jobs["tables"]
    for name in ("linear", "finetune", "semi", "transfer", "ablations"):
        assert (workdir / "results" / "tables" / f"{name}.md").exists()
