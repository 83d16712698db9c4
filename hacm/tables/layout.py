"""The paper's tables laid out from a workflow config: the plan the workflow builds (hacm.tables.plan's format).

One home for "a paper table": which tables there are, their columns (the paper's always shown, so that
what a config did not run says "not run"), their column keys (which config/published.yaml uses too),
rows and the run files of each cell. The workflow calls `build_plan` while it parses (its rules give the
file patterns); `plan_inputs` lists every file a plan reads, `subset_inputs` those of a part of it (the
workflow's benchmark_<key> and protocol_<kind> targets). Torch-free.
"""

from __future__ import annotations

from pathlib import Path

from hacm.benchmarks import BENCHMARKS
from hacm.methods import ABLATED_METHOD, METHODS, RANDOM, RELEASE_OBJECTIVE, method_label
from hacm.protocols import PROTOCOLS
from hacm.recipes import Recipes
from hacm.release.kinds import published_folder, published_method
from hacm.runs import Protocol, ablation_method, base_method, bench_folder

PAPER_BENCHMARKS = ("ntu60-xsub", "ntu60-xview", "ntu120-xsub", "ntu120-xset", "pku1-xsub", "pku2-xsub")
PAPER_SEMI = (("ntu60-xsub", 0.01), ("ntu60-xsub", 0.1), ("ntu60-xview", 0.01), ("ntu60-xview", 0.1))
PAPER_TRANSFER_SOURCES = ("ntu60-xsub", "ntu120-xsub")
PAPER_TRANSFER_TARGET = "pku2-xsub"
ABLATIONS_TITLE = "Ablations, linear evaluation (top-1 %)"


def semi_column(benchmark: str, fraction: float) -> str:
    """ntu60-xsub at 1 % -> ntu60-xsub-1."""
    return f"{benchmark}-{100 * fraction:g}"


def transfer_column(source: str, target: str) -> str:
    """ntu60-xsub -> pku2-xsub: ntu60-pku2 (the datasets)."""
    return f"{BENCHMARKS[source].dataset}-{BENCHMARKS[target].dataset}"


# The tables config/published.yaml may hold and the column keys each may use: the paper's columns.
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "linear": PAPER_BENCHMARKS,
    "finetune": PAPER_BENCHMARKS,
    "semi": tuple(semi_column(benchmark, fraction) for benchmark, fraction in PAPER_SEMI),
    "transfer": tuple(transfer_column(source, PAPER_TRANSFER_TARGET) for source in PAPER_TRANSFER_SOURCES),
    "ablations": PAPER_BENCHMARKS,
}


def _with_paper_columns(configured, paper) -> list:
    return list(paper) + [item for item in configured if item not in paper]


def pretraining_runs(config: dict) -> list[tuple[str, str]]:
    """(benchmark, method) of every pretraining a workflow config asks for: `methods`, then the ablations."""
    runs = [(benchmark, method) for method, benchmarks in config["methods"].items() for benchmark in benchmarks]
    ablations = config["ablations"]
    runs += [(ablations["benchmark"], ablation_method(name)) for name in ablations["variants"]]
    return runs


def pretraining_objective(recipes: Recipes, method: str) -> str | None:
    """What a row's encoders were pretrained to minimise (hacm.methods): a method's objective, or for HA-CM
    under model.release_objective (as its resolved pretraining document says, hacm.recipes, on the ablations'
    benchmark for an ablation and on the method's first benchmark otherwise) the release's; None for the
    random encoder and the authors' published weights."""
    if method == RANDOM or base_method(method) not in METHODS:
        return None
    config = recipes.config
    benchmark = config["ablations"]["benchmark"]
    if config["methods"].get(method):
        benchmark = config["methods"][method][0]
    model = recipes.pretrain_document(benchmark, method, 0).get("model") or {}
    return RELEASE_OBJECTIVE if model.get("release_objective") else METHODS[base_method(method)].objective


def build_plan(config: dict, *, metrics: str, pretrain_log: str) -> dict:
    """The plan of a validated workflow config (its schema's defaults filled in). `metrics` and
    `pretrain_log`: the file patterns of the rules, with {bench}, {method}, {protocol}, {seed} ({protocol}
    absent from `pretrain_log`)."""
    seeds = config["seeds"]
    trained = config["methods"]
    published_encoders = config.get("published_encoders") or {}
    recipes = Recipes(config)

    def seed_files(benchmark: str, method: str, protocol: str) -> list[str]:
        return [metrics.format(bench=bench_folder(benchmark), method=method, protocol=protocol, seed=seed)
                for seed in seeds]

    def logs(benchmark: str, method: str) -> list[str]:
        return [pretrain_log.format(bench=bench_folder(benchmark), method=method, seed=seed) for seed in seeds]

    def row(key: str, label: str, cells: dict, method: str | None = None) -> dict:
        entry = {"key": key, "label": label, "method": method or key,
                 "cells": {column: files for column, files in cells.items() if files}}
        objective = pretraining_objective(recipes, method or key)
        return entry | ({"objective": objective} if objective else {})

    def has_encoder(method: str, benchmark: str) -> bool:
        return method == RANDOM or benchmark in trained.get(method, [])

    def published_rows(protocol: str) -> list[dict]:
        """The rows of the authors' published weights evaluated by `protocol`: a cell per benchmark with a file."""
        return [{**row(name, entry["label"],
                       {b: seed_files(b, published_folder(name), protocol) for b in entry["files"]},
                       published_folder(name)),
                 "weights": {"method": published_method(entry["kind"]), "files": dict(entry["files"])}}
                for name, entry in published_encoders.items() if protocol in entry["protocols"]]

    def main_table(protocol: str) -> dict:
        settings = config["protocols"][protocol]
        extra = published_rows(protocol)
        configured = list(settings["benchmarks"])
        configured += [b for entry in extra for b in entry["cells"] if b not in configured]
        columns = [{"key": b, "label": BENCHMARKS[b].label, "benchmark": b}
                   for b in _with_paper_columns(configured, PAPER_BENCHMARKS)]
        rows = [row(method, method_label(method), {b: seed_files(b, method, protocol) for b in settings["benchmarks"]
                                                    if has_encoder(method, b)})
                for method in settings["methods"]]
        return table(protocol, PROTOCOLS[protocol].title, columns, rows + extra, protocol)

    def semi_table() -> dict:
        settings = config["protocols"]["semi"]
        configured = [(b, f) for b in settings["benchmarks"] for f in settings["fractions"]]
        columns, where = [], {}
        for benchmark, fraction in _with_paper_columns(configured, PAPER_SEMI):
            key = semi_column(benchmark, fraction)
            columns.append({"key": key, "label": f"{BENCHMARKS[benchmark].label} {100 * fraction:g} %",
                            "benchmark": benchmark})
            where[key] = (benchmark, fraction)
        rows = []
        for method in settings["methods"]:
            cells = {key: [file for draw in range(settings["draws"]) for file in
                           seed_files(benchmark, method, Protocol("semi", fraction=fraction, draw=draw).folder)]
                     for key, (benchmark, fraction) in where.items()
                     if (benchmark, fraction) in configured and benchmark in trained.get(method, [])}
            rows.append(row(method, method_label(method), cells))
        return table("semi", PROTOCOLS["semi"].title.format(draws=settings["draws"]), columns, rows, "semi")

    def transfer_table() -> dict:
        settings = config["protocols"]["transfer"]
        target = settings["target"]
        sources = _with_paper_columns(settings["sources"], PAPER_TRANSFER_SOURCES)
        columns = [{"key": transfer_column(s, target), "label": f"{BENCHMARKS[s].label} → {BENCHMARKS[target].label}",
                    "benchmark": target} for s in sources]
        rows = [row(method, method_label(method),
                    {column["key"]: seed_files(target, method, Protocol("transfer", source=source).folder)
                     for column, source in zip(columns, sources)
                     if source in settings["sources"] and source in trained.get(method, [])})
                for method in settings["methods"]]
        return table("transfer", PROTOCOLS["transfer"].title, columns, rows, "transfer")

    def ablation_table() -> dict:
        benchmark, variants = config["ablations"]["benchmark"], config["ablations"]["variants"]
        columns = [{"key": benchmark, "label": BENCHMARKS[benchmark].label, "benchmark": benchmark}]
        rows = [row(ABLATED_METHOD, "HA-CM (full)", {benchmark: seed_files(benchmark, ABLATED_METHOD, "linear")})]
        rows += [row(name, variant["label"], {benchmark: seed_files(benchmark, ablation_method(name), "linear")},
                     ablation_method(name))
                 for name, variant in variants.items()]
        # Each row's masking agreement with random masking, as its pretraining monitor logged it.
        for entry in rows:
            entry["pretrain_logs"] = logs(benchmark, entry["method"])
        return table("ablations", ABLATIONS_TITLE, columns, rows, "linear")

    def table(name: str, title: str, columns: list, rows: list, protocol: str) -> dict:
        return {"name": name, "title": title, "metric": "top1", "columns": columns, "rows": rows, "published": name,
                "protocol": protocol}

    curves = [{"label": f"{method_label(method)} {benchmark}", "method": method, "benchmark": benchmark,
               "log": logs(benchmark, method)[0]}
              for benchmark, method in pretraining_runs(config) if method in METHODS]
    return {"dataset": config["dataset"],
            "tables": [main_table("linear"), main_table("finetune"), semi_table(), transfer_table(), ablation_table()],
            "curves": curves, "accuracy_figure": "linear"}


def _with_predictions(files: list[str]) -> list[str]:
    """The files with the predictions.csv beside each metrics.json (the tables' bootstrap intervals
    resample each run's predictions), sorted, each once."""
    files = files + [str(Path(f).with_name("predictions.csv")) for f in files if f.endswith("metrics.json")]
    return sorted(set(files))


def plan_inputs(plan: dict) -> list[str]:
    """Every file a plan reads: metrics.json files with the predictions.csv beside each, and logs."""
    files = [f for table in plan["tables"] for row in table["rows"] for cell in row["cells"].values() for f in cell]
    files += [f for table in plan["tables"] for row in table["rows"]
              for f in (row.get("weights") or {}).get("files", {}).values()]
    files += [curve["log"] for curve in plan.get("curves") or []]
    files += [log for table in plan["tables"] for row in table["rows"] for log in row.get("pretrain_logs", [])]
    return _with_predictions(files)


# The tables a benchmark's own runs fill (the workflow's benchmark_<key> targets): the transfer table pairs
# two benchmarks (protocol_transfer builds it) and the ablations have their own targets (ablation_<name>).
BENCHMARK_TABLES = tuple(kind for kind, protocol in PROTOCOLS.items() if "source" not in protocol.parameters)
# The tables of one protocol each (the workflow's protocol_<kind> targets); the ablations table, linear
# evaluations too, is built by the ablation targets.
PROTOCOL_TABLES = tuple(PROTOCOLS)


def subset_inputs(plan: dict, *, tables: tuple[str, ...], benchmark: str | None = None) -> list[str]:
    """The run files of a part of a plan: the cells of the named tables (with `benchmark`, only its
    columns, and the pretraining logs of its curves), metrics.json with predictions.csv beside each."""
    def on_benchmark(column: dict) -> bool:
        return benchmark is None or column.get("benchmark") == benchmark

    files = [file for table in plan["tables"] if table["name"] in tables
             for column in table["columns"] if on_benchmark(column)
             for row in table["rows"] for file in row["cells"].get(column["key"], [])]
    if benchmark is not None:
        files += [curve["log"] for curve in plan.get("curves") or [] if curve["benchmark"] == benchmark]
    return _with_predictions(files)
