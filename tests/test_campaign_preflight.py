"""`python -m hacm.campaign preflight`: every submission of a plan against the cluster, the settings that fit
where one does not, and the same check inside a SLURM run before its first sbatch.

The first tests need no SLURM: scontrol's lines, what the executor plugin asks sbatch for, the check against
a cluster written here, the fix as profile entries and whole command-line lists, and SLURM out of reach.
The others ask the real slurmctld the tests start (tests/slurm/): the shipped profile refused with each
resource named, its fix planned again and fitting, a partition and an account that do not exist, a
MaxTime shorter than the runtime, and a SLURM run of the shipped profile stopped before any sbatch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import yaml

from hacm.campaign.__main__ import main
from hacm.campaign.cluster import (
    Cluster,
    Node,
    Partition,
    nodes_from,
    parse_gres,
    parse_time_limit,
    partitions_from,
    read_cluster,
)
from hacm.campaign.cost import JobCost, Submission
from hacm.campaign.jobs import PlannedJob, parsed_arguments
from hacm.campaign.preflight import (
    GROUP_COMPONENTS,
    THREADS,
    check_submission,
    cluster_warnings,
    constraint_met,
)
from hacm.campaign.profile_fix import fix_arguments, option_lists, plan_fix, profile_entries
from hacm.campaign.sbatch_request import sbatch_request
from tests.conftest import REPO
from tests.slurm_cluster import PARTITION, write_test_profile

SNAKEFILE = str(REPO / "Snakefile")
SMOKE = str(REPO / "config" / "smoke.yaml")

NODE_LINES = """\
NodeName=g01 Arch=x86_64 CoresPerSocket=16 CPUAlloc=0 CPUTot=32 CPULoad=0.01 AvailableFeatures=skylake,ib ActiveFeatures=skylake,ib Gres=gpu:a100:4(S:0-1),shard:8 NodeAddr=g01 OS=Linux 6.1.0-18-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01) RealMemory=256000 AllocMem=0 State=IDLE Partitions=gpu,long BootTime=2026-01-01T00:00:00
NodeName=c01 CPUTot=64 AvailableFeatures=(null) Gres=(null) RealMemory=512000 State=IDLE+DRAIN Partitions=cpu Reason=disk full [root@2026-01-01]
"""
PARTITION_LINES = """\
PartitionName=cpu AllowAccounts=ALL Default=YES MaxNodes=UNLIMITED MaxTime=1-00:00:00 Nodes=c01 State=UP
PartitionName=gpu AllowAccounts=lab,other Default=NO MaxNodes=1 MaxTime=02:00:00 Nodes=g[01] State=UP
PartitionName=long AllowAccounts=ALL Default=NO MaxNodes=UNLIMITED MaxTime=UNLIMITED Nodes=g01 State=INACTIVE
"""


def written_cluster() -> Cluster:
    nodes = nodes_from(NODE_LINES)
    return Cluster(partitions=partitions_from(PARTITION_LINES, nodes), user="me", accounts=frozenset({"lab"}))


def submission(resources: dict, *, threads: int = 1, rule: str = "pretrain", runtimes: tuple = ()) -> Submission:
    """One job, or with `runtimes` a group of jobs of those runtimes (its runtime their sum, as Snakemake's)."""
    if not runtimes:
        return Submission(rule, (JobCost(PlannedJob(rule, {}, threads, resources, None, 0), None),), resources)
    jobs = tuple(JobCost(PlannedJob(rule, {}, threads, dict(resources, runtime=minutes), None, index, group=0), None)
                 for index, minutes in enumerate(runtimes))
    return Submission(f"group of {len(jobs)}", jobs, dict(resources, runtime=sum(runtimes), _cores=threads))


# ------------------------------------------------------------------------------------------ no SLURM


def test_scontrol_lines_are_read_as_partitions_of_nodes():
    cluster = written_cluster()
    gpu, cpu, long = (cluster.partitions[name] for name in ("gpu", "cpu", "long"))
    [node] = gpu.nodes  # `Nodes=g[01]` needs no expansion: the node names its partitions
    assert (node.cpus, node.memory_mb, node.gpus, node.features) == (32, 256_000, {"a100": 4}, {"skylake", "ib"})
    assert long.nodes == gpu.nodes and [each.name for each in cpu.nodes] == ["c01"] and not cpu.nodes[0].available
    assert (cpu.max_minutes, gpu.max_minutes, long.max_minutes) == (1440, 120, None)
    assert cluster.default_partition is cpu and gpu.max_nodes == 1 and gpu.allow_accounts == {"lab", "other"}
    assert gpu.admits("lab") and not gpu.admits("nobody") and cpu.admits("nobody")
    assert parse_gres("gpu:2,gpu:v100:1(S:0)") == {None: 2, "v100": 1} and parse_gres("(null)") == {}
    assert [parse_time_limit(text) for text in ("30", "45:00", "00:30:00", "2-12:00:00", "INFINITE")] == [
        30, 45, 30, 3600, None]


@pytest.mark.parametrize("resources, threads, flags, asked", [
    ({"cpus_per_task": 2, "mem_mb": 4000, "runtime": 90}, 8, ["--cpus-per-task=2", "--mem 4000", "-t 90", "--ntasks=1"],
     {"cpus_per_node": 2, "memory_mb_per_node": 4000, "minutes": 90, "gpus_per_node": 0}),
    ({"mem_mb": 4000, "mem_mb_per_cpu": 1000, "gpu": 1}, 4, ["--cpus-per-task=4", "--mem-per-cpu 1000", "--gpus=1"],
     {"cpus_per_node": 4, "memory_mb_per_node": 4000, "gpus_per_node": 1, "cpus_from": "threads"}),
    ({"gpu": 2, "cpus_per_gpu": 6}, 1, ["--cpus-per-gpu=6", "--gpus=2"], {"cpus_per_node": 12, "gpus_per_node": 2}),
    ({"gpu_model": "a100"}, 1, ["--gpus=a100:1"], {"gpus_per_node": 1, "gpu_model": "a100"}),
    ({"gpu": 16, "nodes": 4, "cpus_per_task": 8}, 8, ["--nodes=4", "--gpus=16", "--cpus-per-task=8"],
     {"nodes": 4, "gpus_per_node": 4, "cpus_per_node": 8}),
    ({"gres": "gpu:v100:2", "constraint": "skylake"}, 1, ["--gres=gpu:v100:2", "-C skylake"],
     {"gpus_per_node": 2, "gpu_model": "v100", "constraint": "skylake"}),
    ({"tasks": 4, "cpus_per_task": 2}, 1, ["--ntasks=4", "--cpus-per-task=2"], {"cpus_per_node": 8}),
])
def test_the_request_is_what_the_executor_plugin_asks_sbatch_for(resources, threads, flags, asked):
    """The plugin's own sbatch line for these resources holds `flags`; the request reads them the same way."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    class Resources(dict):
        __getattr__ = dict.__getitem__

    job = SimpleNamespace(resources=Resources(resources), threads=threads)
    params = {"run_uuid": "run", "slurm_logfile": "log", "comment_str": "rule", "account": "", "partition": "",
              "workdir": None}
    line = get_submit_command(job, params) + set_gres_string(job)
    assert all(flag in line for flag in flags), line
    request = sbatch_request(resources, threads)
    assert {key: getattr(request, key) for key in asked} == asked


def test_each_shortfall_is_named_with_a_value_that_fits():
    cluster = written_cluster()
    check = check_submission(submission({"slurm_partition": "gpu", "slurm_account": "other", "cpus_per_task": 48,
                                         "mem_mb": 400_000, "gpu": 8, "runtime": 600}, threads=48), cluster)
    assert check.refused and check.target == "gpu"
    named = {shortfall.what: shortfall for shortfall in check.shortfalls}
    assert set(named) == {"account", "runtime", "cpus", "memory", "gpus"}
    assert "'other' is not one of me's (lab)" in named["account"].text
    assert "48 CPUs a node (cpus_per_task); the nodes of gpu have at most 32" in named["cpus"].text
    assert "MaxTime of gpu: 2 h" in named["runtime"].text
    assert check.fix == {"slurm_account": "lab", "runtime": 120, "cpus_per_task": 32, THREADS: 32, "mem_mb": 256_000,
                         "gpu": 4}
    fitted = check_submission(submission({"slurm_partition": "gpu", **check.fix}, threads=32), cluster)
    assert fitted.runs_on == "gpu" and not fitted.shortfalls


def test_a_partition_that_does_not_exist_moves_to_the_one_needing_fewest_changes():
    """`gpus` does not exist: gpu (GPUs, one change) rather than the default cpu (no GPUs, so no fix)."""
    cluster = written_cluster()
    check = check_submission(submission({"slurm_partition": "gpus", "slurm_account": "lab", "gpu_model": "h100",
                                         "gpu": 2, "runtime": 60}), cluster)
    assert check.target == "gpu" and check.shortfalls[0].text.startswith("partition 'gpus' does not exist")
    assert check.fix == {"slurm_partition": "gpu", "gpu_model": "a100"}
    # no partition given: the default one, whose nodes have no GPUs; with a constraint no node offers
    alone = check_submission(submission({"gpu": 1, "constraint": "skylake&bigmem", "slurm_account": "lab"}), cluster)
    assert alone.target == "gpu" and alone.fix == {"slurm_partition": "gpu"}
    assert [shortfall.what for shortfall in alone.shortfalls] == ["partition", "constraint"]
    assert not alone.shortfalls[1].fix  # no value fixes a feature no node has: said, not guessed


def test_constraints_are_matched_against_a_node_s_features():
    features = frozenset({"skylake", "ib"})
    assert constraint_met("skylake&ib", features) and constraint_met("[haswell|skylake]", features)
    assert constraint_met("(haswell|skylake)&ib*2", features)
    assert constraint_met("haswell", features) is False and constraint_met("skylake&", features) is None


def test_a_group_longer_than_the_time_limit_takes_fewer_jobs():
    """A group's runtime is its jobs' summed: 12 evaluations of 2 h against a 6 h limit fit 3 to a group; an
    evaluation longer than the limit gets the limit, one to a group."""
    cluster = Cluster({"p": Partition("p", (Node("n", 8, 64_000, {None: 1}),), 360, default=True)}, "me", None)
    resources = {"gpu": 1, "cpus_per_task": 4, "mem_mb": 8000}
    check = check_submission(submission(resources, rule="evaluate", runtimes=(120,) * 12), cluster)
    assert check.fix == {GROUP_COMPONENTS: 3} and "its 12 jobs one after another" in check.shortfalls[0].text
    check = check_submission(submission(resources, rule="evaluate", runtimes=(480, 480)), cluster)
    assert check.fix == {"runtime": 360, GROUP_COMPONENTS: 1}
    assert cluster_warnings([check], cluster) == []
    down = Cluster({"p": Partition("p", (Node("n", 8, 64_000, state="DOWN+NOT_RESPONDING"),), None, default=True,
                                   state="DOWN")}, "me", None, "`sacctmgr` failed: no accounting")
    warnings = cluster_warnings([check_submission(submission({"slurm_account": "lab"}), down)], down)
    assert warnings == ["partition p is DOWN: it takes or starts no jobs until an administrator sets it UP",
                        "accounts not checked: `sacctmgr` failed: no accounting"]


def test_the_fix_keeps_every_other_entry_of_the_profile():
    """The shipped profile's lists with the fixed values: slurm_extra, the GPUs and the runtimes stay; the
    partition moves in default-resources; a command-line list is the one that is replaced."""
    argv = ["--profile", str(REPO / "slurm"), "all_tables"]
    lists = option_lists(argv, parsed_arguments(argv)[0])
    assert "pretrain:slurm_extra=--requeue --open-mode=append" in lists["set-resources"]
    cluster = Cluster({"local": Partition("local", (Node("n", 2, 24_000, {None: 1}),), None, default=True)}, "me", None)
    resources = {"slurm_partition": "gpu", "gpu": 1, "cpus_per_task": 8, "mem_mb": 32_000, "runtime": 1440}
    checks = [check_submission(submission(resources, threads=8, rule=rule), cluster)
              for rule in ("pretrain", "evaluate")]
    checks.append(check_submission(submission({"slurm_partition": "gpu", "cpus_per_task": 2}, rule="tables"), cluster))
    fix = plan_fix(checks, lists, {"evaluate": "evaluations_{bench}"})
    assert profile_entries(fix) == {
        "default-resources": {"slurm_partition": "local"},
        "set-resources": {"pretrain": {"cpus_per_task": 2, "mem_mb": 24_000},
                          "evaluate": {"cpus_per_task": 2, "mem_mb": 24_000}},
        "set-threads": {"pretrain": 2, "evaluate": 2}}
    words = fix_arguments(fix, lists)
    resources_list = words[words.index("--set-resources") + 1:words.index("--set-threads")]
    assert resources_list == [entry.replace("pretrain:cpus_per_task=8", "pretrain:cpus_per_task=2")
                              .replace("evaluate:cpus_per_task=8", "evaluate:cpus_per_task=2")
                              .replace(":mem_mb=32000", ":mem_mb=24000") if entry.startswith(("pretrain:", "evaluate:"))
                              else entry for entry in lists["set-resources"]]
    assert words[:2] == ["--default-resources", "slurm_partition=local"] and "runtime=60" in words
    given = argv + ["--set-resources", "pretrain:gpu=2"]
    assert option_lists(given, parsed_arguments(given)[0])["set-resources"] == ["pretrain:gpu=2"]


def test_a_name_python_would_evaluate_is_quoted():
    """Snakemake evaluates a resource's text as Python first: a partition called `max` goes quoted."""
    cluster = Cluster({"max": Partition("max", (Node("n", 2, 1000),), None)}, "me", None)
    fix = plan_fix([check_submission(submission({"slurm_partition": "gone"}), cluster)],
                   {"default-resources": ["slurm_partition=gone", "runtime=60"], "set-resources": [],
                    "set-threads": [], "group-components": []}, {})
    assert fix_arguments(fix, {"default-resources": ["slurm_partition=gone", "runtime=60"]}) == [
        "--default-resources", "slurm_partition='max'", "runtime=60"]
    assert profile_entries(fix) == {"default-resources": {"slurm_partition": "'max'"}}


def test_without_slurm_it_says_so_in_one_line_and_exits_3(tmp_path, monkeypatch, capsys):
    """No scontrol on PATH, and a scontrol whose slurmctld does not answer: one line each, exit 3, before
    any dry run."""
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["preflight", "--profile", "slurm", "all_tables"]) == 3
    assert capsys.readouterr().err == ("python -m hacm.campaign preflight: SLURM is not reachable from here: no "
                                       "`scontrol` command on PATH\n")
    scontrol = tmp_path / "scontrol"
    scontrol.write_text("#!/bin/sh\necho 'scontrol: error: Unable to contact slurm controller (connect failure)' >&2\n"
                        "echo 'slurm_load_node: Unable to contact slurm controller (connect failure)' >&2\nexit 1\n")
    scontrol.chmod(0o755)
    assert main(["preflight", "--profile", "slurm", "all_tables"]) == 3
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "`scontrol show node -o` failed: scontrol: error: Unable to contact" in err


# ------------------------------------------------------------------------------- a real slurmctld


@pytest.fixture
def on_cluster(cluster, monkeypatch):
    monkeypatch.setenv("SLURM_CONF", cluster.env["SLURM_CONF"])
    return cluster


def node_limits(cluster) -> tuple[int, int]:
    """(CPUs, memory MB) of the cluster's node, as slurmd registered it."""
    [node] = read_cluster().partitions[PARTITION].nodes
    return node.cpus, node.memory_mb


def preflight(capsys, *arguments: str) -> tuple[int, str]:
    code = main(["preflight", *arguments])
    return code, capsys.readouterr().out


def test_the_shipped_profile_is_refused_with_each_resource_named(on_cluster, tmp_path, capsys):
    """The issue's refusal: partition `gpu` does not exist here, and pretrain and evaluate ask 8 CPUs and
    32 GB of a node that has fewer; each is named with the node's own figures and what fits."""
    cpus, memory = node_limits(on_cluster)
    code, out = preflight(capsys, "--profile", str(REPO / "slurm"), "all_tables", "--configfile", SMOKE,
                          "--directory", str(tmp_path))
    assert code == 1, out
    assert out.splitlines()[-1].startswith("preflight: refused: 8 of 8 submissions (evaluate, pretrain, ")
    for rule in ("pretrain", "evaluate"):
        section = out.split(f"\n{rule}: ", 1)[1].split("\n\n")[0].split("\n", 6)
        assert "  asks     partition gpu, 8 CPUs, 32,000 MB, 1 GPU" in section[1]
        assert f"partition 'gpu' does not exist (the cluster's: {PARTITION}*" in section[3]
        assert f"8 CPUs a node (cpus_per_task); the nodes of {PARTITION} have at most {cpus}" in section[4]
        assert f"32,000 MB a node (mem_mb); the nodes of {PARTITION} have at most {memory:,} MB" in section[5]
    assert f"  fix      slurm_partition={PARTITION}, cpus_per_task={cpus}, threads={cpus}, mem_mb={memory}" in out
    assert "Checked: planned again with these, every submission fits." in out
    assert "jobs planned by `snakemake" in out and "GPU-hours: no device named" in out  # the cost report follows


def test_the_printed_fix_fits(on_cluster, tmp_path, capsys):
    """What the refusal prints, applied: the command-line lists appended to the same command, and the
    profile entries pasted into a copy of the profile; either way the preflight passes."""
    command = ["--profile", str(REPO / "slurm" / "no-conda"), "all_tables", "--configfile", SMOKE,
               "--directory", str(tmp_path / "run")]
    code, out = preflight(capsys, "--json", *command)
    report = json.loads(out)
    assert code == 1 and not report["fits"] and report["fix"]["fits"] is True
    assert "--set-resources" in report["fix"]["arguments"]
    code, out = preflight(capsys, *command, *report["fix"]["arguments"])
    assert code == 0, out
    assert out.splitlines()[-1].startswith(f"preflight: fits: 8 submissions of 4 rules, on partition {PARTITION}")
    document = yaml.safe_load((REPO / "slurm" / "no-conda" / "config.yaml").read_text())
    for key, entries in report["fix"]["profile"].items():
        for name, value in entries.items():
            document[key][name] = {**document[key][name], **value} if isinstance(value, dict) else value
    (tmp_path / "profile").mkdir()
    (tmp_path / "profile" / "config.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    code, out = preflight(capsys, "--profile", str(tmp_path / "profile"), *command[2:])
    assert code == 0, out


def test_the_lowered_resources_of_the_test_profile_fit(on_cluster, tmp_path, capsys):
    profile = write_test_profile(tmp_path / "profile", REPO / "slurm" / "no-conda")
    code, out = preflight(capsys, "--profile", str(profile), "all_tables", "--configfile", SMOKE,
                          "--directory", str(tmp_path / "run"))
    assert code == 0, out
    assert "Submissions no partition can run" not in out and "Fit: evaluate: 8 jobs in 2 group submissions" in out


def test_a_partition_and_an_account_that_do_not_exist_are_named(on_cluster, tmp_path, capsys):
    profile = write_test_profile(tmp_path / "profile", REPO / "slurm" / "no-conda")
    document = yaml.safe_load((profile / "config.yaml").read_text())
    document["default-resources"].update(slurm_partition="nosuch", slurm_account="nobody")
    (profile / "config.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    code, out = preflight(capsys, "--json", "--profile", str(profile), "all_tables", "--configfile", SMOKE,
                          "--directory", str(tmp_path / "run"))
    report = json.loads(out)
    assert code == 1 and report["fix"]["fits"] is True
    texts = {shortfall["text"] for entry in report["submissions"] for shortfall in entry["shortfalls"]}
    assert f"partition 'nosuch' does not exist (the cluster's: {PARTITION}*; * default)" in texts
    assert "account 'nobody' is not one of root's (root)" in texts
    assert report["fix"]["profile"] == {"default-resources": {"slurm_partition": PARTITION, "slurm_account": "root"}}


def test_a_time_limit_shorter_than_the_runtime_is_named(on_cluster, tmp_path, capsys):
    """MaxTime 30 min against the test profile's 60-minute runtimes: pretrain gets 30 min, and the grouped
    evaluations (whose runtimes add up) one to a group at 30 min; the fix planned again fits."""
    profile = write_test_profile(tmp_path / "profile", REPO / "slurm" / "no-conda")
    command = ["--profile", str(profile), "all_tables", "--configfile", SMOKE, "--directory", str(tmp_path / "run")]
    limit = ["scontrol", "update", f"PartitionName={PARTITION}"]
    subprocess.run([*limit, "MaxTime=30"], env=on_cluster.env, check=True)
    try:
        code, out = preflight(capsys, *command)
        assert code == 1, out
        assert f"  why      runtime 1 h; MaxTime of {PARTITION}: 30 min" in out
        assert f"runtime 5 h (its 5 jobs one after another); MaxTime of {PARTITION}: 30 min" in out
        assert "group-components:\n    evaluations_{bench}: 1" in out
        assert "Checked: planned again with these, every submission fits." in out
    finally:
        subprocess.run([*limit, "MaxTime=UNLIMITED"], env=on_cluster.env, check=True)


def test_a_slurm_run_that_does_not_fit_stops_before_submitting(on_cluster, tmp_path):
    """`snakemake --profile slurm/no-conda` as shipped, against this cluster: the onstart check stops it
    with the refusal, exit 1, and nothing reaches sbatch (not even the jobs that would fit)."""
    before = len(on_cluster.sacct_jobs())
    run = subprocess.run([sys.executable, "-m", "snakemake", "--profile", str(REPO / "slurm" / "no-conda"),
                          "--snakefile", SNAKEFILE, "--directory", str(tmp_path), "all_tables", "--configfile", SMOKE],
                         cwd=tmp_path, env=dict(on_cluster.env, PATH=os.environ["PATH"]), capture_output=True,
                         text=True, timeout=300)
    output = run.stdout + run.stderr
    assert run.returncode == 1, output
    assert "hacm preflight: 8 of 8 submissions cannot run on this cluster; nothing was submitted:" in output
    assert f"partition 'gpu' does not exist (the cluster's: {PARTITION}*" in output
    assert "`python -m hacm.campaign preflight --profile" in output
    assert not (tmp_path / "results").exists()  # not even the local rules ran
    assert len(on_cluster.sacct_jobs()) == before
