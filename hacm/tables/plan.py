"""The paper's tables as a plan: their layout, built from the workflow config, checked and loaded.

One home for "a paper table": which tables there are, their columns (the paper's always shown, so that
what a config did not run says "not run"), their column keys (which config/published.yaml uses too),
rows and the run files of each cell. The workflow calls `build_plan` while it parses (its rules give the
file patterns) and writes the result with `python -m hacm.tables.plan`; `python -m hacm.tables` reads it
with `load_plan`. `plan_inputs` lists every file a plan reads, `subset_inputs` those of a part of it (the
workflow's benchmark_<key> and protocol_<kind> targets). Torch-free.

Plan (JSON)::

    {"dataset": "synthetic" | "real",
     "statistic": "best" | "last",
     "tables": [{"name": "linear", "title": "...", "metric": "top1", "protocol": "linear",
                 "columns": [{"key": "ntu60-xsub", "label": "NTU-60 x-sub", "benchmark": "ntu60-xsub"}, ...],
                 "rows": [{"key": "hacm", "label": "HA-CM", "method": "hacm",
                           "cells": {"ntu60-xsub": ["results/.../metrics.json", ...], ...},
                           "pretrain_logs": [".../metrics.jsonl", ...]},
                          {"key": "mamp_published", "label": "MAMP, published weights",
                           "method": "published.mamp_published", "cells": {...},
                           "weights": {"method": "mamp (published weights)",
                                       "files": {"ntu60-xsub": "PATH.pth", ...}}}, ...],
                 "published": "linear" | null}, ...],
     "curves": [{"label": "...", "method": "hacm", "benchmark": "ntu60-xsub", "log": ".../metrics.jsonl"}],
     "accuracy_figure": "linear" | null}

`statistic`, `curves`, `accuracy_figure`, a table's `protocol` and `published`, a column's
`benchmark` and a row's `method`, `pretrain_logs` and `weights` may be left out (PLAN_SCHEMA). A table's
`protocol`, a column's `benchmark` and a row's `method` (its run folder: hacm, mae, mamp, random,
hacm-<ablation> or published.<name>), when given, are what every metrics.json there must be of. A row
with `weights` is the authors' published weights (the workflow's `published_encoders`): each of its
cells must come from the file of its column's benchmark (its sha256) read as `weights.method`. Relative
file names are taken from the current directory, or else from the plan file's folder.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hacm.benchmarks import BENCHMARKS
from hacm.recipes import Recipes
from hacm.release.kinds import published_folder, published_method
from hacm.runs import PRETRAINED_METHODS, RANDOM, Protocol, ablation_method, bench_folder
from hacm.tables import ReportError, read_document
from hacm.tables.schemas import TEXT, closed, first_error

if TYPE_CHECKING:
    from hacm.tables.published import Published

# Every value of the workflow's `dataset` (workflow/schemas/config.schema.yaml; tests/test_plan.py keeps
# them equal), as the table captions say it.
DATASETS = {"synthetic": "embedded synthetic dataset", "real": "real NTU RGB+D / PKU-MMD data",
            "imported": "NTU RGB+D data imported from MAMP / CTR-GCN .npz or pyskl .pkl files"}
# What a cell of ours shows, and how the caption says it.
STATISTICS = {"best": "best epoch (as the published rows)", "last": "last epoch (the published rows give the best)"}
DEFAULT_STATISTIC = "best"
DIFFERENCES_SUFFIX = "_differences"  # NAME_differences.csv beside each table NAME
_STEM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

# ------------------------------------------------------------------------------------ the paper's layout

METHOD_LABELS = {"hacm": "HA-CM", "mae": "MAE", "mamp": "MAMP", RANDOM: "random encoder (no pretraining)"}
PAPER_BENCHMARKS = ("ntu60-xsub", "ntu60-xview", "ntu120-xsub", "ntu120-xset", "pku1-xsub", "pku2-xsub")
PAPER_SEMI = (("ntu60-xsub", 0.01), ("ntu60-xsub", 0.1), ("ntu60-xview", 0.01), ("ntu60-xview", 0.1))
PAPER_TRANSFER_SOURCES = ("ntu60-xsub", "ntu120-xsub")
PAPER_TRANSFER_TARGET = "pku2-xsub"
TABLE_TITLES = {"linear": "Linear evaluation (top-1 %)", "finetune": "Fine-tuning (top-1 %)",
                "transfer": "Transfer learning (top-1 %)", "ablations": "Ablations, linear evaluation (top-1 %)"}


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


OBJECTIVES = {"corrected": "the corrected HA-CM objective (docs/method.md §2.7)",
              "release": "the release's own HA-CM objective (model.release_objective: its decoder offset, loss-mask "
                         "and score orders, distance factor 4, clip at norm 1)",
              "mae": "MAE's objective, as maoyunyao/MAMP", "mamp": "MAMP's objective, as maoyunyao/MAMP"}


def pretraining_objective(recipes: Recipes, method: str) -> str | None:
    """What a row's encoders were pretrained to minimise (OBJECTIVES): an HA-CM row's release_objective as its
    resolved pretraining document says (hacm.recipes), on the ablations' benchmark for an ablation and on the
    method's first benchmark otherwise; None for the random encoder and the authors' published weights."""
    if method == RANDOM or method not in PRETRAINED_METHODS and not method.startswith(ablation_method("")):
        return None
    if method in ("mae", "mamp"):
        return OBJECTIVES[method]
    config = recipes.config
    benchmark = config["ablations"]["benchmark"]
    if config["methods"].get(method):
        benchmark = config["methods"][method][0]
    model = recipes.pretrain_document(benchmark, method, 0).get("model") or {}
    return OBJECTIVES["release" if model.get("release_objective") else "corrected"]


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
        rows = [row(method, METHOD_LABELS[method], {b: seed_files(b, method, protocol) for b in settings["benchmarks"]
                                                    if has_encoder(method, b)})
                for method in settings["methods"]]
        return table(protocol, TABLE_TITLES[protocol], columns, rows + extra, protocol)

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
            rows.append(row(method, METHOD_LABELS[method], cells))
        title = f"Semi-supervised fine-tuning (top-1 %, mean ± std over {settings['draws']} draws)"
        return table("semi", title, columns, rows, "semi")

    def transfer_table() -> dict:
        settings = config["protocols"]["transfer"]
        target = settings["target"]
        sources = _with_paper_columns(settings["sources"], PAPER_TRANSFER_SOURCES)
        columns = [{"key": transfer_column(s, target), "label": f"{BENCHMARKS[s].label} → {BENCHMARKS[target].label}",
                    "benchmark": target} for s in sources]
        rows = [row(method, METHOD_LABELS[method],
                    {column["key"]: seed_files(target, method, Protocol("transfer", source=source).folder)
                     for column, source in zip(columns, sources)
                     if source in settings["sources"] and source in trained.get(method, [])})
                for method in settings["methods"]]
        return table("transfer", TABLE_TITLES["transfer"], columns, rows, "transfer")

    def ablation_table() -> dict:
        benchmark, variants = config["ablations"]["benchmark"], config["ablations"]["variants"]
        columns = [{"key": benchmark, "label": BENCHMARKS[benchmark].label, "benchmark": benchmark}]
        rows = [row("hacm", "HA-CM (full)", {benchmark: seed_files(benchmark, "hacm", "linear")})]
        rows += [row(name, variant["label"], {benchmark: seed_files(benchmark, ablation_method(name), "linear")},
                     ablation_method(name))
                 for name, variant in variants.items()]
        # Each row's masking agreement with random masking, as its pretraining monitor logged it.
        for entry in rows:
            entry["pretrain_logs"] = logs(benchmark, entry["method"])
        return table("ablations", TABLE_TITLES["ablations"], columns, rows, "linear")

    def table(name: str, title: str, columns: list, rows: list, protocol: str) -> dict:
        return {"name": name, "title": title, "metric": "top1", "columns": columns, "rows": rows, "published": name,
                "protocol": protocol}

    curves = [{"label": f"{METHOD_LABELS.get(method, method)} {benchmark}", "method": method, "benchmark": benchmark,
               "log": logs(benchmark, method)[0]}
              for benchmark, method in pretraining_runs(config) if method in PRETRAINED_METHODS]
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
BENCHMARK_TABLES = ("linear", "finetune", "semi")
# The tables of one protocol each (the workflow's protocol_<kind> targets); the ablations table, linear
# evaluations too, is built by the ablation targets.
PROTOCOL_TABLES = ("linear", "finetune", "semi", "transfer")


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


# ------------------------------------------------------------------------------------- checked plans

_FILES = {"type": "array", "items": TEXT}
_OPTIONAL_TEXT = {"type": ["string", "null"], "pattern": r"\S"}
PLAN_SCHEMA = closed(["dataset", "tables"], {
    "dataset": {"enum": list(DATASETS)},
    "statistic": {"enum": list(STATISTICS)},
    "tables": {"type": "array", "minItems": 1, "items": closed(["name", "title", "metric", "columns", "rows"], {
        "name": TEXT, "title": TEXT, "metric": TEXT, "published": _OPTIONAL_TEXT, "protocol": TEXT,
        "columns": {"type": "array", "minItems": 1,
                    "items": closed(["key", "label"], {"key": TEXT, "label": TEXT, "benchmark": TEXT})},
        "rows": {"type": "array", "items": closed(["key", "label", "cells"], {
            "key": TEXT, "label": TEXT, "method": TEXT, "cells": {"type": "object", "additionalProperties": _FILES},
            "pretrain_logs": _FILES, "objective": TEXT,
            "weights": closed(["method", "files"], {"method": TEXT,
                                                    "files": {"type": "object", "additionalProperties": TEXT}})})},
    })},
    "curves": {"type": ["array", "null"], "items": closed(["label", "method", "benchmark", "log"], {
        "label": TEXT, "method": TEXT, "benchmark": TEXT, "log": TEXT})},
    "accuracy_figure": _OPTIONAL_TEXT,
})


class PlanError(ReportError):
    """A plan that cannot be used; the message is one line naming the entry."""


@dataclass(frozen=True)
class ColumnSpec:
    key: str
    label: str
    benchmark: str | None = None  # when given, every metrics.json of the column must be of this benchmark


@dataclass(frozen=True)
class PublishedWeights:
    """The authors' published weights a row evaluates: what metrics.json calls them, and their file per benchmark."""

    method: str  # e.g. "mamp (published weights)"
    files: dict[str, Path]  # benchmark -> the .pth file


@dataclass(frozen=True)
class RowSpec:
    key: str
    label: str
    cells: dict[str, tuple[Path, ...]]
    pretrain_logs: tuple[Path, ...] = ()
    method: str | None = None  # when given, every metrics.json of the row must be of this run folder's encoder
    weights: PublishedWeights | None = None  # when given, every metrics.json of the row must be of these weights
    objective: str | None = None  # what its encoders were pretrained to minimise, said under the table


@dataclass(frozen=True)
class TableSpec:
    name: str
    title: str
    metric: str
    columns: tuple[ColumnSpec, ...]
    rows: tuple[RowSpec, ...]
    published: str | None
    protocol: str | None = None  # when given, every metrics.json of the table must be of this protocol


@dataclass(frozen=True)
class CurveSpec:
    label: str
    method: str
    benchmark: str
    log: Path


@dataclass(frozen=True)
class Plan:
    path: Path
    dataset: str
    tables: tuple[TableSpec, ...]
    curves: tuple[CurveSpec, ...]
    accuracy_figure: str | None
    statistic: str = DEFAULT_STATISTIC

    def table(self, name: str) -> TableSpec:
        return next(table for table in self.tables if table.name == name)


def resolve_file(name: str, plan_dir: Path, where: str) -> Path:
    """An existing file named by the plan: absolute, from the current directory, or from the plan's folder."""
    path = Path(name)
    for candidate in [path] if path.is_absolute() else [path, plan_dir / path]:
        if candidate.is_file():
            return candidate
    raise PlanError(f"{where}: file not found: {name}")


def _files(names: list[str], where: str, plan_dir: Path) -> tuple[Path, ...]:
    """A plan's list of existing files, none listed twice."""
    paths = []
    for index, name in enumerate(names):
        path = resolve_file(name, plan_dir, f"{where}[{index}]")
        if any(path.resolve() == other.resolve() for other in paths):
            raise PlanError(f"{where}[{index}]: {name} is listed twice")
        paths.append(path)
    return tuple(paths)


def _unique(keys: list[str], place: Callable[[int], str], what: str) -> None:
    """PlanError naming the first key given twice, at `place(its index)`."""
    seen = set()
    for index, key in enumerate(keys):
        if key in seen:
            raise PlanError(f"{place(index)}: {what} {key!r} appears twice")
        seen.add(key)


def _table(raw: dict, where: str, plan_dir: Path, published: Published | None) -> TableSpec:
    name = raw["name"]
    if not _STEM.match(name) or name.lower() == "index":
        raise PlanError(f"{where}.name: {name!r} cannot be a file stem (letters, digits, '_', '-', '.'; not 'index')")
    columns = {column["key"]: ColumnSpec(**column) for column in raw["columns"]}
    _unique([column["key"] for column in raw["columns"]], lambda i: f"{where}.columns[{i}]", "column key")
    _unique([row["key"] for row in raw["rows"]], lambda i: f"{where}.rows[{i}]", "row key")
    rows = []
    for index, row in enumerate(raw["rows"]):
        here = f"{where}.rows[{index}]"
        cells = {}
        for column, names in row["cells"].items():
            if column not in columns:
                raise PlanError(f"{here}.cells[{column!r}]: no such column in this table (columns: {', '.join(columns)})")
            cells[column] = _files(names, f"{here}.cells[{column!r}]", plan_dir)
        weights = None
        if row.get("weights") is not None:
            weights = PublishedWeights(method=row["weights"]["method"], files={
                benchmark: resolve_file(name, plan_dir, f"{here}.weights.files[{benchmark!r}]")
                for benchmark, name in row["weights"]["files"].items()})
        rows.append(RowSpec(key=row["key"], label=row["label"], cells=cells, method=row.get("method"), weights=weights,
                            objective=row.get("objective"),
                            pretrain_logs=_files(row.get("pretrain_logs", []), f"{here}.pretrain_logs", plan_dir)))
    reference = raw.get("published")
    if reference is not None and published is not None and reference not in published.tables:
        known = ", ".join(sorted(published.tables))
        raise PlanError(f"{where}.published: unknown table {reference!r} in {published.path} (known: {known})")
    return TableSpec(name=name, title=raw["title"], metric=raw["metric"], columns=tuple(columns.values()),
                     rows=tuple(rows), published=reference, protocol=raw.get("protocol"))


def parse_plan(document: object, path: Path | str, published: Published | None = None) -> Plan:
    """The checked plan; `published` (when given) checks each table's `published` reference."""
    path = Path(path)
    problem = first_error(document, PLAN_SCHEMA, str(path))
    if problem:
        raise PlanError(problem)
    tables = [_table(raw, f"{path}: tables[{i}]", path.parent, published) for i, raw in enumerate(document["tables"])]
    names = [table.name for table in tables]
    _unique(names, lambda i: f"{path}: tables[{i}].name", "table")
    clash = next((name for name in names if name + DIFFERENCES_SUFFIX in names), None)
    if clash is not None:
        raise PlanError(f"{path}: tables: {clash + DIFFERENCES_SUFFIX!r} would overwrite the differences CSV of "
                        f"{clash!r}; rename it")
    curves = [CurveSpec(label=raw["label"], method=raw["method"], benchmark=raw["benchmark"],
                        log=resolve_file(raw["log"], path.parent, f"{path}: curves[{i}].log"))
              for i, raw in enumerate(document.get("curves") or [])]
    figure = document.get("accuracy_figure")
    if figure is not None and figure not in names:
        raise PlanError(f"{path}: accuracy_figure: unknown table {figure!r} (plan tables: {', '.join(sorted(names))})")
    return Plan(path=path, dataset=document["dataset"], tables=tuple(tables), curves=tuple(curves),
                accuracy_figure=figure, statistic=document.get("statistic", DEFAULT_STATISTIC))


def load_plan(path: Path | str, published: Published | None = None) -> Plan:
    document = read_document(path, json.loads, PlanError, "plan JSON", (json.JSONDecodeError,))
    return parse_plan(document, Path(path), published)


# ----------------------------------------------------------------------------------------- the command


def main(argv: list[str] | None = None) -> int:
    """`python -m hacm.tables.plan --json TEXT --out FILE`: check a plan's structure and write it (the
    workflow's tables_plan rule; the files it names are checked by hacm.tables once they exist)."""
    from hacm.cli import EXIT_USAGE, OneLineParser, json_object_argument
    from hacm.files import write_text_atomically

    parser = OneLineParser(prog="python -m hacm.tables.plan", description=main.__doc__.splitlines()[0])
    parser.add_argument("--json", required=True, help="the plan as a JSON object")
    parser.add_argument("--out", type=Path, required=True, help="plan file to write")
    args = parser.parse_args(argv)
    document = json_object_argument(parser, args.json)
    problem = first_error(document, PLAN_SCHEMA, f"the plan for {args.out}")
    if problem:
        print(f"hacm.tables.plan: {problem}", file=sys.stderr)
        return EXIT_USAGE
    write_text_atomically(args.out, json.dumps(document, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
