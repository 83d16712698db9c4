"""The SLURM test harness end to end: a 2-rule workflow goes through real sbatch on a local cluster.

Needs root (start_cluster.sh installs Debian's Slurm and runs its daemons) and
snakemake-executor-plugin-slurm.  It is skipped only when not root and CI is unset; in CI, and
whenever the daemons cannot start, it fails with the reason.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from tests.slurm_cluster import SlurmStartError, local_slurm, require_slurm_prerequisites, write_test_profile

pytestmark = pytest.mark.slurm

# the first rule is the default target; gpu_b asks for the (placeholder) GPU
SNAKEFILE = textwrap.dedent(
    """\
    rule gpu_b:
        input: "a.txt"
        output: "b.txt"
        resources: gpu=1
        shell: "cat {input} > {output}"

    rule make_a:
        output: "a.txt"
        shell: "echo from-slurm-job-$SLURM_JOB_ID > {output}"
    """
)


def test_workflow_via_sbatch(tmp_path):
    require_slurm_prerequisites()

    workdir = tmp_path / "wf"
    workdir.mkdir()
    snakefile = workdir / "Snakefile"
    snakefile.write_text(SNAKEFILE)
    profile = write_test_profile(tmp_path / "profile", None)

    t0 = time.monotonic()
    try:
        with local_slurm(tmp_path / "cluster") as cluster:
            t1 = time.monotonic()
            run = subprocess.run(
                [sys.executable, "-m", "snakemake", "--profile", str(profile),
                 "--snakefile", str(snakefile), "--directory", str(workdir)],
                check=False, cwd=workdir, env=cluster.env, capture_output=True, text=True, timeout=600,
            )
            t2 = time.monotonic()
            assert run.returncode == 0, f"snakemake failed:\n{run.stdout[-4000:]}\n{run.stderr[-8000:]}"
            # snakemake itself waited for sacct to say COMPLETED; allow accounting a moment anyway
            deadline = time.monotonic() + 15
            while True:
                jobs = {job.rule: job for job in cluster.sacct_jobs()}
                done = all(jobs.get(r) and jobs[r].state == "COMPLETED" for r in ("make_a", "gpu_b"))
                if done or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
    except SlurmStartError as e:
        pytest.fail(f"the local SLURM cluster did not start: {e}")
    print(f"\nslurm harness: cluster start {t1 - t0:.1f}s, workflow {t2 - t1:.1f}s, "
          f"total with stop {time.monotonic() - t0:.1f}s")

    assert (workdir / "a.txt").read_text().startswith("from-slurm-job-"), "make_a did not run inside a SLURM job"
    assert (workdir / "b.txt").read_text() == (workdir / "a.txt").read_text()
    assert {r: j.state for r, j in jobs.items()} == {"make_a": "COMPLETED", "gpu_b": "COMPLETED"}, jobs
    assert "gres/gpu=1" in jobs["gpu_b"].alloc_tres, jobs["gpu_b"]
    assert "gres/gpu" not in jobs["make_a"].alloc_tres, jobs["make_a"]
