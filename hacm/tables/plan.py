"""The paper's tables as a plan: its format, checked and loaded.

A plan says which tables there are, their columns, rows and the run files of each cell; the workflow
builds it from its config while it parses (hacm.tables.layout.build_plan) and writes it with
`python -m hacm.tables plan`; `python -m hacm.tables render` reads it with `load_plan`. Torch-free.

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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

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
