"""The paper's tables as a plan (hacm.tables.plan) and the run folder names (hacm.runs), without running
the workflow: what each table holds for a config, and that the names round-trip."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys

import pytest
import yaml
from snakemake.utils import validate

from hacm.runs import PROTOCOL_PATTERN, Protocol, RunNameError, bench_folder, benchmark_of_folder
from hacm.tables.layout import PAPER_BENCHMARKS, TABLE_COLUMNS, build_plan, plan_inputs, pretraining_runs
from hacm.tables.plan import DATASETS, PLAN_SCHEMA
from hacm.tables.published import load_published
from hacm.tables.schemas import first_error
from tests.conftest import REPO

METRICS = "results/{bench}/{method}/{protocol}/seed{seed}/metrics.json"
LOG = "results/{bench}/{method}/pretrain/seed{seed}/metrics.jsonl"
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def workflow_config(name: str = "config.yaml", **changes) -> dict:
    """A config file as the workflow sees it: validated, with the schema's defaults."""
    config = yaml.safe_load((REPO / "config" / name).read_text())
    config.update(copy.deepcopy(changes))
    validate(config, str(SCHEMA), set_default=True)
    return config


def plan_of(config: dict) -> dict:
    return build_plan(config, metrics=METRICS, pretrain_log=LOG)


def table(plan: dict, name: str) -> dict:
    return next(t for t in plan["tables"] if t["name"] == name)


@pytest.mark.parametrize("protocol, folder", [
    (Protocol("linear"), "linear"),
    (Protocol("finetune"), "finetune"),
    (Protocol("semi", fraction=0.01, draw=3), "semi1-draw3"),
    (Protocol("semi", fraction=0.1, draw=0), "semi10-draw0"),
    (Protocol("transfer", source="ntu120-xsub"), "transfer-from-ntu120_xsub"),
])
def test_protocol_folders_round_trip_and_match_the_wildcard(protocol, folder):
    assert protocol.folder == folder
    assert Protocol.parse(folder) == protocol
    assert re.fullmatch(PROTOCOL_PATTERN, folder)


@pytest.mark.parametrize("folder", ["pretrain", "semi", "transfer-from-", "knn", "semi1-drawx"])
def test_a_folder_that_names_no_protocol_is_one_line(folder):
    with pytest.raises(RunNameError, match="names no evaluation protocol"):
        Protocol.parse(folder)


def test_benchmark_folders_round_trip():
    for benchmark in PAPER_BENCHMARKS:
        assert benchmark_of_folder(bench_folder(benchmark)) == benchmark


def test_the_embedded_plan_matches_its_schema_and_names_each_configured_run():
    config = workflow_config()
    plan = plan_of(config)
    assert first_error(plan, PLAN_SCHEMA, "plan") is None
    assert [t["name"] for t in plan["tables"]] == list(TABLE_COLUMNS)
    linear = table(plan, "linear")
    assert [c["key"] for c in linear["columns"]] == list(PAPER_BENCHMARKS)
    rows = {row["key"]: row for row in linear["rows"]}
    assert rows["hacm"]["cells"]["pku2-xsub"] == ["results/pku2_xsub/hacm/linear/seed0/metrics.json"]
    assert set(rows["mae"]["cells"]) == {"ntu60-xsub"}  # MAE is pretrained on NTU-60 x-sub only
    assert set(rows["random"]["cells"]) == set(config["protocols"]["linear"]["benchmarks"])
    semi = table(plan, "semi")
    assert semi["rows"][0]["cells"]["ntu60-xsub-1"] == [
        f"results/ntu60_xsub/hacm/semi1-draw{draw}/seed0/metrics.json" for draw in range(config["protocols"]["semi"]["draws"])]
    assert "ntu60-xview-1" not in semi["rows"][0]["cells"]  # a paper column this config does not run
    transfer = table(plan, "transfer")
    assert transfer["rows"][0]["cells"]["ntu120-pku2"] == ["results/pku2_xsub/hacm/transfer-from-ntu120_xsub/seed0/metrics.json"]
    ablations = table(plan, "ablations")
    assert [row["key"] for row in ablations["rows"]] == ["hacm", *config["ablations"]["variants"]]
    assert ablations["rows"][1]["pretrain_logs"] == ["results/ntu60_xsub/hacm-euclidean/pretrain/seed0/metrics.jsonl"]
    inputs = plan_inputs(plan)
    assert "results/pku2_xsub/hacm/linear/seed0/predictions.csv" in inputs
    assert {curve["method"] for curve in plan["curves"]} == {"hacm", "mae", "mamp"}


def test_the_paper_columns_stay_when_a_config_runs_one_benchmark_and_seeds_multiply_the_files():
    config = workflow_config(seeds=[0, 1, 2], methods={"hacm": ["pku1-xview"]},
                             protocols={"linear": {"benchmarks": ["pku1-xview"], "methods": ["hacm"]}})
    linear = table(plan_of(config), "linear")
    assert [c["key"] for c in linear["columns"]] == [*PAPER_BENCHMARKS, "pku1-xview"]
    assert linear["rows"][0]["cells"] == {"pku1-xview": [
        f"results/pku1_xview/hacm/linear/seed{seed}/metrics.json" for seed in (0, 1, 2)]}
    assert ("ntu60-xsub", "hacm-euclidean") in pretraining_runs(config)


def test_published_numbers_use_the_paper_columns_of_the_plan():
    """Every column key the published numbers use is a column of the paper config's plan (one layout)."""
    plan = plan_of(workflow_config("paper.yaml"))
    published = load_published(REPO / "config" / "published.yaml")
    for name, published_table in published.tables.items():
        columns = {c["key"] for c in table(plan, name)["columns"]}
        for row in published_table.rows:
            assert set(row.values) <= columns, (name, row.method)


def test_the_plan_command_writes_a_plan_and_refuses_a_broken_one_in_one_line(tmp_path):
    plan = plan_of(workflow_config())
    out = tmp_path / "tables" / "plan.json"
    written = subprocess.run([sys.executable, "-m", "hacm.tables", "plan", "--json", json.dumps(plan), "--out", str(out)],
                             cwd=REPO, capture_output=True, text=True, timeout=120)
    assert written.returncode == 0, written.stderr
    assert json.loads(out.read_text()) == plan
    plan["tables"][0]["rows"][0]["cells"]["ntu60-xsub"] = "results/one.json"  # a file name where a list belongs
    messages = []
    for document in (json.dumps(plan), "[1, 2]", "{not json"):
        refused = subprocess.run([sys.executable, "-m", "hacm.tables", "plan", "--json", document, "--out",
                                  str(tmp_path / "bad.json")], cwd=REPO, capture_output=True, text=True, timeout=120)
        lines = refused.stderr.strip().splitlines()
        assert refused.returncode == 2 and len(lines) == 1 and "Traceback" not in refused.stderr, refused.stderr
        assert not (tmp_path / "bad.json").exists()
        messages.append(lines[0])
    assert "tables[0].rows[0].cells.ntu60-xsub: must be a list" in messages[0]
    assert "must be a JSON object" in messages[1] and "not valid JSON" in messages[2]


def test_every_workflow_dataset_has_a_plan_and_a_caption():
    """A plan carries the workflow's `dataset`: each value the workflow schema allows must pass the plan's
    schema (dataset: imported once failed there, at the tables job, after every run had finished)."""
    allowed = yaml.safe_load(SCHEMA.read_text())["properties"]["dataset"]["enum"]
    assert list(DATASETS) == allowed
    for dataset in allowed:
        assert first_error(plan_of(workflow_config(dataset=dataset)), PLAN_SCHEMA, "plan") is None


@pytest.mark.parametrize("name", ["config.yaml", "paper.yaml"])
def test_each_pretrained_row_says_which_objective_it_trained(name):
    """Issue 27: the tables state which objective each row trained; both configs run the release's as an
    ablation row."""
    plan = plan_of(workflow_config(name))
    ablations = {row["key"]: row for row in table(plan, "ablations")["rows"]}
    assert ablations["hacm"]["objective"].startswith("the corrected HA-CM objective")
    assert ablations["release_objective"]["objective"].startswith("the release's own HA-CM objective")
    assert ablations["euclidean"]["objective"].startswith("the corrected")
    linear = {row["key"]: row for row in table(plan, "linear")["rows"]}
    assert "objective" not in linear["random"] and linear["hacm"]["objective"].startswith("the corrected")
    if "mamp" in linear:
        assert linear["mamp"]["objective"] == "MAMP's objective, as maoyunyao/MAMP"
