"""`python -m hacm.campaign cost`: the planned jobs of a dry run, the work and FLOPs of each, the hours on a
measured device, the jobs longer than their runtime, and its one-line errors."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import yaml

from hacm.campaign.__main__ import main
from hacm.campaign.cost import JobCost, Submission, campaign_costs, job_hours, rule_totals, submissions
from hacm.campaign.flops import block_flops, encoder_forward_flops, pretrain_step_flops, visible_tokens
from hacm.campaign.jobs import CampaignError, PlannedJob, planned_jobs
from hacm.campaign.split_sizes import SplitSizes
from hacm.campaign.throughput import Device, Rate, default_table, gpu_check_device, load_table
from hacm.campaign.work import JobWork, RunDocuments, evaluate_work, pretrain_work, semi_members
from hacm.model.config import ModelConfig, preset
from tests.conftest import REPO

PAPER = str(REPO / "config" / "paper.yaml")
SNAKEFILE = str(REPO / "Snakefile")
# The hand-computed case: T 12 in patches of 3 (4 patches x 18 limb tokens = 72 tokens), D 16, one block each.
TINY = ModelConfig(frames=12, t_patch=3, dim=16, depth=1, heads=2, decoder_dim=16, decoder_depth=1, decoder_heads=2)


@pytest.fixture(scope="module")
def paper_plan(tmp_path_factory):
    """The paper campaign as the shipped SLURM profile submits it, planned in a fresh working directory."""
    workdir = tmp_path_factory.mktemp("campaign")
    return planned_jobs(["-s", SNAKEFILE, "--directory", str(workdir), "--profile", str(REPO / "slurm"), "all_tables",
                         "--configfile", PAPER])


def store(folder, samples: int, labels=None) -> None:
    folder.mkdir(parents=True)
    (folder / "info.json").write_text(json.dumps({"samples": samples}))
    if labels is not None:
        np.save(folder / "labels.npy", np.asarray(labels, dtype=np.int64))


def job(rule: str, shell: str, **wildcards) -> PlannedJob:
    return PlannedJob(rule=rule, wildcards=wildcards, threads=1, resources={"gpu": 1, "runtime": 60}, shellcmd=shell,
                      jobid=0)


def test_the_paper_plan_prints_its_pretrainings_evaluations_and_total_gpu_hours(tmp_path, capsys):
    code = main(["cost", "--gpu", "epyc-2core", "-s", SNAKEFILE, "--directory", str(tmp_path), "all_tables",
                 "--configfile", PAPER])
    out = capsys.readouterr().out
    assert code == 0, out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line and not line.startswith(" ")}
    assert rows["pretrain"][0] == "93" and rows["evaluate"][0] == "291"
    assert rows["total"][0] == "779" and float(rows["total"][-1].replace(",", "")) > 0  # GPU-hours
    assert "Device: epyc-2core" in out and "source:" in out


def test_the_planned_jobs_carry_what_a_submission_resolves(paper_plan, capsys):
    """The profile's resources and threads (uncapped, as on the cluster), the shell command; nothing printed."""
    assert capsys.readouterr() == ("", "")
    pretrain = [job for job in paper_plan.jobs if job.rule == "pretrain"]
    assert len(pretrain) == 93 and sum(job.rule == "evaluate" for job in paper_plan.jobs) == 291
    first = pretrain[0]
    assert first.threads == 8 and first.resources["runtime"] == 1440 and first.resources["gpu"] == 1
    assert first.resources["cpus_per_task"] == 8 and first.resources["slurm_partition"] == "gpu"
    assert first.resources["mem_mb"] == 32000 and "OMP_NUM_THREADS=8 python -m hacm.pretrain" in first.shellcmd
    assert first.argument("--config").endswith("/pretrain/seed" + first.wildcards["seed"] + "/run.yaml")
    assert paper_plan.executor == "slurm"


def test_the_paper_totals_add_up_and_only_pku_lacks_a_split_size(paper_plan):
    costs = campaign_costs(paper_plan, None)
    totals = rule_totals(costs)
    missing = [cost for cost in costs if cost.missing]
    assert {cost.job.wildcards["bench"] for cost in missing} == {"pku1_xsub", "pku2_xsub"}
    assert totals["pretrain"].estimated + totals["evaluate"].estimated + len(missing) == 93 + 291
    # ntu60-xsub HA-CM, by hand: 500 epochs x 40,091 // 64 steps x 64, plus 25 kNN passes over 40,091 + 16,487.
    hacm = next(cost for cost in costs if cost.job.rule == "pretrain" and cost.job.wildcards == {
        "bench": "ntu60_xsub", "method": "hacm", "seed": "0"})
    assert hacm.work.passes[0].samples == 500 * (40_091 // 64) * 64
    assert hacm.work.passes[1].samples == 25 * (40_091 + 16_487)


def test_one_pretraining_job_by_hand(tmp_path):
    """Forward FLOPs of TINY written out: blocks 6144 n + 64 n^2 (D 16, MLP 64), embedding 28,800 (twice: no
    gradient for its input), decoder_embed 3,072 (6 visible tokens), head 20,736 (72 tokens), the attention
    criterion 36,864 (no gradient), two bodies."""
    assert visible_tokens(TINY) == 6 and block_flops(72, 16, 4.0) == 6144 * 72 + 64 * 72**2
    with_gradient = (6144 * 6 + 64 * 36) + 3_072 + (6144 * 72 + 64 * 72**2) + 20_736
    assert pretrain_step_flops(TINY) == 2 * (3 * with_gradient + 2 * 28_800 + 36_864) == 5_211_648
    assert encoder_forward_flops(TINY) == 2 * (28_800 + 6144 * 72 + 64 * 72**2) == 1_605_888
    store(tmp_path / "data" / "ntu60-xsub" / "train", 1000)
    store(tmp_path / "data" / "ntu60-xsub" / "test", 300)
    document = {"method": "hacm", "model": TINY.to_dict(), "data": {"batch_size": 64},
                "optim": {"epochs": 10, "warmup_epochs": 0}, "monitor": {"knn_every": 4}}
    config_job = job("pretrain_config", f"python -m hacm.configure pretrain --json '{json.dumps(document)}' --out run.yaml")
    pretrain = job("pretrain", "python -m hacm.pretrain --config run.yaml --data data/ntu60-xsub --out x",
                   bench="ntu60_xsub")
    work = pretrain_work(pretrain, RunDocuments([config_job, pretrain], tmp_path))
    # 15 steps of 64 in each of 10 epochs; kNN after epochs 4, 8 and 10 over 1,000 + 300 samples.
    assert [(part.samples, part.flops_per_sample) for part in work.passes] == [(9600, 5_211_648), (3900, 1_605_888)]
    device = Device("here", "a test device", (Rate("fp32", 64, 100.0, TINY, "this test"),))
    hours, missing = job_hours(work, device)
    assert missing is None
    assert hours * 3600 == pytest.approx(96 + 3900 * 1_605_888 / (100 * 5_211_648))  # 9,600 samples at 100/s: 96 s


def test_an_evaluation_job_counts_what_its_protocol_computes(tmp_path):
    store(tmp_path / "d" / "ntu60-xsub" / "train", 1000)
    store(tmp_path / "d" / "ntu60-xsub" / "test", 300)
    linear = {"method": "hacm", "model": TINY.to_dict(), "data": {"batch_size": 64},
              "linear": {"epochs": 5, "batch_size": 128, "augment": True}, "monitor": {"test_every": 1}}
    finetune = {"method": "hacm", "model": TINY.to_dict(), "data": {"batch_size": 64},
                "finetune": {"epochs": 3, "warmup_epochs": 0, "batch_size": 48}, "monitor": {"test_every": 2}}
    jobs = [job("evaluate_config", f"python -m hacm.configure evaluate --json '{json.dumps(linear)}' --out a.yaml"),
            job("evaluate_config", f"python -m hacm.configure evaluate --json '{json.dumps(finetune)}' --out b.yaml")]
    documents = RunDocuments(jobs, tmp_path)
    shell = "python -m hacm.evaluate --protocol {} --config {} --data d/ntu60-xsub --encoder none --out x"
    work = evaluate_work(job("evaluate", shell.format("linear", "a.yaml")), documents)
    # The test split once, then 5 epochs of 1,000 // 128 = 7 augmented batches of 128.
    assert [part.samples for part in work.passes] == [300, 5 * 7 * 128]
    work = evaluate_work(job("evaluate", shell.format("finetune", "b.yaml")), documents)
    # 3 epochs of 1,000 // 48 = 20 steps of 48; the test split after epoch 2 and at the end.
    assert [part.samples for part in work.passes] == [3 * 20 * 48, 2 * 300]
    assert work.passes[0].flops_per_sample == 2 * (2 * 28_800 + 3 * (6144 * 72 + 64 * 72**2))


def test_a_semi_supervised_draw_keeps_what_the_protocol_keeps(tmp_path):
    from hacm.evaluate.subsets import per_class_subset

    labels = np.repeat(np.arange(3), [10, 25, 3])
    store(tmp_path / "train", len(labels), labels)
    sizes = SplitSizes(train=len(labels), test=5, source="stores", train_dir=tmp_path / "train")
    assert semi_members(sizes, 0.1, "ntu60-xsub") == len(per_class_subset(labels, 0.1, seed=0)) == 4
    # Without the store: 60 classes taken as balanced, round(0.1 x 40,091 / 60) = 67 each.
    assert semi_members(SplitSizes(40_091, 16_487, "official"), 0.1, "ntu60-xsub") == 60 * 67


def test_a_job_beyond_its_runtime_needs_one_continuation_per_extra_run(tmp_path, capsys):
    over = Submission("one", (JobCost(job("pretrain", "x"), JobWork(), gpu_hours=2.5),), {"gpu": 1, "runtime": 60})
    assert (over.wall_minutes, over.runs_needed) == (150, 3)  # 150 minutes on one GPU
    two_gpus = Submission("two", over.costs, {"gpu": 2, "runtime": 60})
    assert (two_gpus.wall_minutes, two_gpus.runs_needed) == (75, 2)
    code = main(["cost", "--gpu", "epyc-2core", "--json", "-s", SNAKEFILE, "--directory", str(tmp_path),
                 "results/ntu60_xsub/hacm/pretrain/seed0/encoder.pt", "--configfile", PAPER,
                 "--set-resources", "pretrain:runtime=60"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    [pretrain] = [entry for entry in report["jobs"] if entry["rule"] == "pretrain"]
    assert pretrain["resources"]["runtime"] == 60 and pretrain["wall_minutes"] > 60
    assert pretrain["continuations"] == math.ceil(pretrain["wall_minutes"] / 60) - 1 == pretrain["runs_needed"] - 1
    assert report["total"]["beyond_runtime"] == 1
    main(["cost", "--gpu", "epyc-2core", "-s", SNAKEFILE, "--directory", str(tmp_path),
          "results/ntu60_xsub/hacm/pretrain/seed0/encoder.pt", "--configfile", PAPER, "--set-resources",
          "pretrain:runtime=60"])
    listed = re.search(r"pretrain bench=ntu60_xsub method=hacm seed=0 .* (\d+) continuations", capsys.readouterr().out)
    assert listed and int(listed[1]) == pretrain["continuations"]


def test_a_profile_s_groups_are_one_submission_each(paper_plan):
    """slurm/config.yaml groups each benchmark's evaluations by 12 into one SLURM job whose runtime is theirs
    summed; such a group, not its jobs, is held to a time limit."""
    assert paper_plan.groups and all(job.group is not None for job in paper_plan.jobs if job.rule == "evaluate")
    for index, group in enumerate(paper_plan.groups):
        members = [job for job in paper_plan.jobs if job.group == index]
        assert sorted(job.jobid for job in members) == list(group.jobids)
        assert group.resources["runtime"] == sum(job.resources["runtime"] for job in members)
    device = Device("here", "a test device", (Rate("fp32", 64, 1000.0, TINY, "this test"),))
    costs = campaign_costs(paper_plan, device)
    grouped = [each for each in submissions(paper_plan, costs) if each.label.startswith("group ")]
    assert len(grouped) == len(paper_plan.groups)
    estimated = next(each for each in grouped if each.gpu_hours is not None)
    assert estimated.gpu_hours == pytest.approx(sum(cost.gpu_hours for cost in estimated.costs))
    assert estimated.runtime == paper_plan.groups[estimated.costs[0].job.group].resources["runtime"]


def test_an_unknown_gpu_is_one_line_naming_the_known_ones(capsys):
    assert main(["cost", "--gpu", "no-such-gpu", "all_tables"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown GPU 'no-such-gpu'; known: epyc-2core" in err


def test_a_workflow_error_is_snakemake_s_first_error_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"pretrain": {"model": {"dimension": 3}}, "evaluate": {}}))
    assert main(["cost", "-s", SNAKEFILE, "--directory", str(tmp_path), "--configfile", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown key 'dimension'" in err
    assert main(["cost", "-s", SNAKEFILE, "--no-such-option"]) == 2
    assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err


def test_flop_scaling_is_one_on_the_reference_and_falls_with_more_frames():
    [rate] = [rate for rate in load_table(default_table())[0]["epyc-2core"].rates if rate.precision == "fp32"]
    assert rate.samples_per_s_at(rate.model) == pytest.approx(rate.samples_per_s)
    speeds = [rate.samples_per_s_at(ModelConfig(frames=frames, t_patch=3, decoder_depth=3)) for frames in (36, 72, 120, 300)]
    assert all(earlier > later for earlier, later in zip(speeds, speeds[1:]))
    mamp = preset("mamp", frames=120, t_patch=4, decoder_depth=5)  # 25 joint tokens, T 120: slower than HA-CM at T 72
    assert rate.samples_per_s_at(mamp) < rate.samples_per_s


def test_the_flop_count_matches_torch_s_counter_and_the_cited_step():
    """torch.utils.flop_counter counts every matmul of hacm's model but not the fused attention kernel (the
    count's small omissions weigh ~1.5 % at width 16, under 0.05 % at the paper's); hacm.bench cites 305.6
    GFLOP for a batch-16 step of the authors' implementation at T 72."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from hacm.bench.step import PAPER_MODEL, REFERENCE_BATCH, REFERENCE_STEP_GFLOP
    from hacm.model.pretrainer import HACMPretrainer

    for model in (TINY, preset("mamp", frames=12, t_patch=3, dim=16, depth=2, heads=2, decoder_dim=8, decoder_heads=2)):
        torch.manual_seed(0)
        pretrainer, x = HACMPretrainer(model), torch.randn(2, 3, model.frames, 25, 2)
        with FlopCounterMode(display=False) as counter:
            pretrainer(x, generator=torch.Generator().manual_seed(0)).loss.backward()
        visible = visible_tokens(model)
        attention = 3 * (model.depth * 4 * visible**2 * model.dim + model.decoder_depth * 4 * model.tokens**2 * model.decoder_dim)
        counted = counter.get_total_flops() / 2  # two samples
        assert counted == pytest.approx(pretrain_step_flops(model) - model.num_bodies * attention, rel=2e-2)
    paper = ModelConfig(frames=72, t_patch=3, **PAPER_MODEL)
    assert pretrain_step_flops(paper) / 1e9 == pytest.approx(REFERENCE_STEP_GFLOP / REFERENCE_BATCH, rel=5e-3)


def test_every_throughput_figure_carries_its_source(tmp_path):
    devices, default = load_table(default_table())
    assert default is None  # no GPU has been measured yet
    assert devices and all(rate.source.strip() for device in devices.values() for rate in device.rates)
    table = yaml.safe_load(default_table().read_text())
    del table["devices"]["epyc-2core"]["rates"][0]["source"]
    unsourced = tmp_path / "unsourced.yaml"
    unsourced.write_text(yaml.safe_dump(table))
    with pytest.raises(CampaignError, match="missing source"):
        load_table(unsourced)


def test_a_gpu_check_summary_is_a_device(tmp_path):
    """What `bash benchmarks/speed/gpu_check.sh` writes (here with this test's own figures) is read as measured."""
    runs = [{"precision": "fp32", "batch_size": 64, "status": "ok", "samples_per_s": 200.0, "frames": 72, "t_patch": 3},
            {"precision": "fp32", "batch_size": 256, "status": "ok", "samples_per_s": 400.0, "frames": 72, "t_patch": 3},
            {"precision": "bf16", "batch_size": 64, "status": "failed", "error": "out of memory"}]
    summary = tmp_path / "gpu_check.json"
    summary.write_text(json.dumps({"gpu": "Some GPU", "date": "2026-12-06", "pretrain": {"runs": runs}}))
    device = gpu_check_device(summary)
    assert device.name == "Some GPU" and [rate.samples_per_s for rate in device.rates] == [200.0, 400.0]
    assert device.rate("fp32", 128 + 64).batch_size == 256 and device.rate("fp32", 48).batch_size == 64
    assert device.rate("bf16", 64) is None
    assert all("gpu_check" in rate.source for rate in device.rates)
