"""Validated configuration, run bookkeeping and the input functions of every rule.

A run is (benchmark, method, protocol, seed) and lives in
results/<dataset>_<split>/<method>/<protocol>/seed<k>/. Its configuration is resolved here from the
workflow config and written by a local rule, with the document as a rule parameter, so that changing
one hyperparameter reruns exactly the runs it reaches.
"""

import copy
import json
import re
import sys
from pathlib import Path

from snakemake.utils import validate

validate(config, workflow.source_path("../schemas/config.schema.yaml"), set_default=True)

# The benchmark registry (torch-free) names the datasets, benchmarks and their table labels.
sys.path.insert(0, str(Path(workflow.basedir)))
from hacm.benchmarks import BENCHMARKS, DATASETS  # noqa: E402

# Jobs run `python -m hacm.<stage>` from this checkout in whatever environment the rule gets (a conda
# env holds only the dependencies) and whatever the working directory.
shell.prefix(f"export PYTHONPATH={workflow.basedir}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; ")

PATHS = config["paths"]
RESULTS = PATHS["results"]
LOGS = f"{RESULTS}/logs"
PRETRAINED = ("hacm", "mae", "mamp")
RANDOM = "random"  # the randomly initialised encoder: the "no pretraining" rows
ABLATIONS = config["ablations"]["variants"]
ABLATION_BENCHMARK = config["ablations"]["benchmark"]
SEEDS = config["seeds"]


wildcard_constraints:
    bench="[a-z0-9]+_[a-z]+",
    method="[a-z0-9_.-]+",
    seed="[0-9]+",
    dataset="|".join(DATASETS),
    protocol="linear|finetune|semi[0-9.]+-draw[0-9]+|transfer-from-[a-z0-9]+_[a-z]+",


# --- names ------------------------------------------------------------------------------------------


def bench_dir(benchmark):
    """ntu60-xsub -> ntu60_xsub (the results folder of a benchmark)."""
    return benchmark.replace("-", "_")


def benchmark_of(bench):
    return bench.replace("_", "-")


def ablation_method(name):
    return f"hacm-{name}"


def base_method(method):
    """hacm-euclidean -> hacm; the preset a method starts from."""
    return method.split("-", 1)[0]


SEMI_FOLDER = re.compile(r"semi([0-9.]+)-draw([0-9]+)")
TRANSFER_PREFIX = "transfer-from-"


def protocol_folder(kind, *, fraction=None, draw=None, source=None):
    """The folder name of an evaluation run's protocol (parse_protocol reads it back): linear, finetune,
    semi<percent>-draw<k>, transfer-from-<source bench>."""
    if kind == "semi":
        return f"semi{100 * fraction:g}-draw{draw}"
    if kind == "transfer":
        return f"{TRANSFER_PREFIX}{bench_dir(source)}"
    return kind


def parse_protocol(folder):
    """A protocol folder name -> {"kind": hacm.evaluate's --protocol, and "fraction" and "draw" (semi) or
    "source" (transfer, the benchmark whose encoder is fine-tuned)}."""
    semi = SEMI_FOLDER.fullmatch(folder)
    if semi:
        return {"kind": "semi", "fraction": float(semi[1]) / 100, "draw": int(semi[2])}
    if folder.startswith(TRANSFER_PREFIX):
        return {"kind": "transfer", "source": benchmark_of(folder[len(TRANSFER_PREFIX):])}
    return {"kind": folder}


# --- data -------------------------------------------------------------------------------------------


def dataset_of(benchmark):
    return "synthetic" if config["dataset"] == "synthetic" else benchmark.split("-")[0]


def data_report(benchmark):
    """The report.json that hacm.prepare writes once the benchmark's stores exist."""
    return f"{PATHS['data']}/{dataset_of(benchmark)}/report.json"


def data_dir(benchmark):
    return f"{PATHS['data']}/{dataset_of(benchmark)}/{benchmark}"


# --- run configurations -----------------------------------------------------------------------------


def merged(base, override):
    """`override` laid over `base`, nested dicts key by key."""
    result = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def method_overrides(method):
    if method in PRETRAINED or method == RANDOM:
        return {}
    name = method.split("-", 1)[1]
    if name not in ABLATIONS:
        raise WorkflowError(f"unknown ablation {name!r} in {method!r}; known: {', '.join(ABLATIONS)}")
    return ABLATIONS[name]["pretrain"]


def recipe_overrides(stage, benchmark, method):
    """The `stage` keys of every `overrides` entry that applies to (benchmark, method), laid over each
    other in order. An entry without `benchmarks` / `methods` applies to all; an ablation counts as hacm."""
    result = {}
    for entry in config["overrides"]:
        if benchmark in entry.get("benchmarks", [benchmark]) and base_method(method) in entry.get("methods", [base_method(method)]):
            result = merged(result, entry.get(stage))
    return result


def pretrain_document(benchmark, method, seed):
    """Shared keys < the benchmark's / method's recipe overrides < the ablation's keys."""
    document = merged(merged(config["pretrain"], recipe_overrides("pretrain", benchmark, method)),
                      method_overrides(method))
    return {**document, "method": base_method(method), "seed": int(seed)}


# The evaluate sections each protocol reads: a run's document holds only those, so that changing, say,
# the linear epochs reruns the linear runs and nothing else.
SECTIONS_READ = {"linear": ("data", "linear", "monitor"), "finetune": ("data", "finetune", "monitor"),
                 "semi": ("data", "finetune", "monitor"), "transfer": ("data", "finetune", "monitor")}


def evaluate_document(benchmark, method, protocol, seed):
    parsed = parse_protocol(protocol)
    read = SECTIONS_READ[parsed["kind"]]
    sections = merged(config["evaluate"], recipe_overrides("evaluate", benchmark, method))
    document = {key: value for key, value in sections.items() if key in read}
    document["seed"] = int(seed)
    # The random-encoder rows use HA-CM's pretraining architecture on this benchmark (HA-CM's tokens).
    document["method"] = "hacm" if method == RANDOM else base_method(method)
    document["model"] = pretrain_document(benchmark, "hacm", 0).get("model", {})
    if parsed["kind"] == "semi":
        document["semi"] = {"fraction": parsed["fraction"], "draw": parsed["draw"]}
    return document


def _check_stage_configs():
    """Every run's configuration checked by hacm's own config classes while the DAG is built, so a bad
    key fails at once with its name (the rules check again when they write the files)."""
    try:
        from hacm.eval.config import EvalConfig
        from hacm.config import ConfigError
        from hacm.train.config import PretrainConfig
    except ImportError:  # the workflow runs without hacm's dependencies here: the jobs check
        return
    for benchmark, method in pretraining_runs():
        try:
            PretrainConfig.from_dict(pretrain_document(benchmark, method, 0))
        except (ConfigError, ValueError, TypeError) as error:
            raise WorkflowError(f"config: pretrain ({benchmark}, {method}): {error}") from None
    for benchmark in BENCHMARK_LABELS:
        for protocol in ("linear", "finetune"):
            try:
                EvalConfig.from_dict(evaluate_document(benchmark, RANDOM, protocol, 0))
            except (ConfigError, ValueError, TypeError) as error:
                raise WorkflowError(f"config: evaluate ({benchmark}, {protocol}): {error}") from None



def as_json(document):
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


# --- runs and their files ---------------------------------------------------------------------------


def run_dir(benchmark, method, protocol, seed):
    return f"{RESULTS}/{bench_dir(benchmark)}/{method}/{protocol}/seed{seed}"


def encoder_file(benchmark, method, seed):
    return f"{run_dir(benchmark, method, 'pretrain', seed)}/encoder.pt"


def pretrain_log(benchmark, method, seed):
    return f"{run_dir(benchmark, method, 'pretrain', seed)}/metrics.jsonl"


def metrics_file(benchmark, method, protocol, seed):
    return f"{run_dir(benchmark, method, protocol, seed)}/metrics.json"


def evaluation_encoder(wildcards):
    """The encoder an evaluation reads: none for the random rows, the source's for transfer."""
    if wildcards.method == RANDOM:
        return []
    benchmark = parse_protocol(wildcards.protocol).get("source", benchmark_of(wildcards.bench))
    return encoder_file(benchmark, wildcards.method, wildcards.seed)


def pretraining_runs():
    runs = [(benchmark, method) for method, benchmarks in config["methods"].items() for benchmark in benchmarks]
    runs += [(ABLATION_BENCHMARK, ablation_method(name)) for name in ABLATIONS]
    return runs


# --- tables -----------------------------------------------------------------------------------------

BENCHMARK_LABELS = {key: benchmark.label for key, benchmark in BENCHMARKS.items()}
METHOD_LABELS = {"hacm": "HA-CM", "mae": "MAE", "mamp": "MAMP", RANDOM: "random encoder (no pretraining)"}


def _row(key, label, cells):
    return {"key": key, "label": label, "cells": {column: files for column, files in cells.items() if files}}


def _seed_files(benchmark, method, protocol):
    return [metrics_file(benchmark, method, protocol, seed) for seed in SEEDS]


# The paper's columns are always shown, so that what this configuration did not run says "not run".
PAPER_BENCHMARKS = ["ntu60-xsub", "ntu60-xview", "ntu120-xsub", "ntu120-xset", "pku1-xsub", "pku2-xsub"]
PAPER_SEMI = [("ntu60-xsub", 0.01), ("ntu60-xsub", 0.1), ("ntu60-xview", 0.01), ("ntu60-xview", 0.1)]
PAPER_TRANSFER_SOURCES = ["ntu60-xsub", "ntu120-xsub"]


def with_paper_columns(configured, paper):
    return paper + [item for item in configured if item not in paper]


def _main_table(name, title, protocol):
    settings = config["protocols"][protocol]
    benchmarks = with_paper_columns(settings["benchmarks"], PAPER_BENCHMARKS)
    columns = [{"key": b, "label": BENCHMARK_LABELS[b], "benchmark": b} for b in benchmarks]
    rows = []
    for method in settings["methods"]:
        cells = {b: _seed_files(b, method, protocol) for b in settings["benchmarks"]
                 if method == RANDOM or b in config["methods"].get(method, [])}
        rows.append(_row(method, METHOD_LABELS[method], cells))
    return {"name": name, "title": title, "metric": "top1", "columns": columns, "rows": rows, "published": name,
            "protocol": protocol}


def _semi_table():
    settings = config["protocols"]["semi"]
    configured = [(b, f) for b in settings["benchmarks"] for f in settings["fractions"]]
    columns, cells_of = [], {}
    for benchmark, fraction in with_paper_columns(configured, PAPER_SEMI):
        key = f"{benchmark}-{100 * fraction:g}"
        columns.append({"key": key, "label": f"{BENCHMARK_LABELS[benchmark]} {100 * fraction:g} %",
                        "benchmark": benchmark})
        cells_of[key] = (benchmark, fraction)
    rows = []
    for method in settings["methods"]:
        cells = {}
        for key, (benchmark, fraction) in cells_of.items():
            if (benchmark, fraction) in configured and benchmark in config["methods"].get(method, []):
                cells[key] = [metrics_file(benchmark, method, protocol_folder("semi", fraction=fraction, draw=draw), seed)
                              for draw in range(settings["draws"]) for seed in SEEDS]
        rows.append(_row(method, METHOD_LABELS[method], cells))
    title = f"Semi-supervised fine-tuning (top-1 %, mean ± std over {settings['draws']} draws)"
    return {"name": "semi", "title": title, "metric": "top1", "columns": columns, "rows": rows, "published": "semi",
            "protocol": "semi"}


def _transfer_table():
    settings = config["protocols"]["transfer"]
    target = settings["target"]
    sources = with_paper_columns(settings["sources"], PAPER_TRANSFER_SOURCES)
    columns = [{"key": f"{s.split('-')[0]}-{target.split('-')[0]}",
                "label": f"{BENCHMARK_LABELS[s]} → {BENCHMARK_LABELS[target]}", "benchmark": target} for s in sources]
    rows = []
    for method in settings["methods"]:
        cells = {column["key"]: _seed_files(target, method, protocol_folder("transfer", source=source))
                 for column, source in zip(columns, sources)
                 if source in settings["sources"] and source in config["methods"].get(method, [])}
        rows.append(_row(method, METHOD_LABELS[method], cells))
    return {"name": "transfer", "title": "Transfer learning (top-1 %)", "metric": "top1", "columns": columns,
            "rows": rows, "published": "transfer", "protocol": "transfer"}


def ablation_files(name):
    return _seed_files(ABLATION_BENCHMARK, ablation_method(name), "linear")


def _ablation_table():
    benchmark = ABLATION_BENCHMARK
    columns = [{"key": benchmark, "label": BENCHMARK_LABELS[benchmark], "benchmark": benchmark}]
    rows = [_row("hacm", "HA-CM (full)", {benchmark: _seed_files(benchmark, "hacm", "linear")})]
    rows += [_row(name, variant["label"], {benchmark: ablation_files(name)}) for name, variant in ABLATIONS.items()]
    # Each row's masking agreement with random masking, as its pretraining monitor logged it.
    for row in rows:
        method = "hacm" if row["key"] == "hacm" else ablation_method(row["key"])
        row["pretrain_logs"] = [pretrain_log(benchmark, method, seed) for seed in SEEDS]
    return {"name": "ablations", "title": "Ablations, linear evaluation (top-1 %)", "metric": "top1",
            "columns": columns, "rows": rows, "published": "ablations", "protocol": "linear"}


def tables_plan():
    curves = [{"label": f"{METHOD_LABELS.get(method, method)} {benchmark}", "method": method, "benchmark": benchmark,
               "log": pretrain_log(benchmark, method, SEEDS[0])}
              for benchmark, method in pretraining_runs() if method in PRETRAINED]
    return {
        "dataset": config["dataset"],
        "tables": [_main_table("linear", "Linear evaluation (top-1 %)", "linear"),
                   _main_table("finetune", "Fine-tuning (top-1 %)", "finetune"),
                   _semi_table(), _transfer_table(), _ablation_table()],
        "curves": curves,
        "accuracy_figure": "linear",
    }


def plan_inputs(plan):
    files = [f for table in plan["tables"] for row in table["rows"] for cell in row["cells"].values() for f in cell]
    files += [curve["log"] for curve in plan["curves"]]
    files += [log for table in plan["tables"] for row in table["rows"] for log in row.get("pretrain_logs", [])]
    # Each run's predictions beside its metrics: the tables' bootstrap intervals resample them.
    files += [str(Path(f).with_name("predictions.csv")) for f in files if f.endswith("metrics.json")]
    return sorted(set(files))


TABLE_NAMES = ("linear", "finetune", "semi", "transfer", "ablations")
TABLES_DIR = f"{RESULTS}/tables"


_check_stage_configs()
