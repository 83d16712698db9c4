"""Evaluation results (metrics.json files named by a plan) -> tables beside the published numbers.

Plan (JSON, written by the workflow)::

    {"dataset": "synthetic" | "real",
     "tables": [{"name": "linear", "title": "...", "metric": "top1",
                 "columns": [{"key": "ntu60-xsub", "label": "NTU-60 x-sub"}, ...],
                 "rows": [{"key": "hacm", "label": "HA-CM",
                           "cells": {"ntu60-xsub": ["results/.../metrics.json", ...], ...}}, ...],
                 "published": "linear" | null}, ...],
     "curves": [{"label": "...", "method": "hacm", "benchmark": "ntu60-xsub", "log": ".../metrics.jsonl"}],
     "accuracy_figure": "linear" | null}

`curves` and `accuracy_figure` may be left out (no curves, no bars). Relative file names are taken
from the current directory, or else from the plan file's folder. Every metrics.json must match
hacm.eval.metrics.METRICS_SCHEMA; its `metric` value is a fraction 0..1 and is shown as a percent.

A cell of ours with several files (seeds, semi-supervised draws) is mean ± sample std (ddof=1); one
file gives just the value; a column the row has no files for is "not run". Published cells are the
numbers as published; a number the source does not give is "—" ("not reported" in the CSV).

Outputs, per plan table NAME: DIR/NAME.csv, DIR/NAME.md, DIR/NAME.tex; then DIR/pretraining.png
(when the plan has curves or an accuracy_figure) and DIR/index.md linking everything.

CSV (tidy long format, one line per row × column, in table order), columns:
    table, row, label, source, column, column_label, status, mean, std, n, shown
  row:    our row key, or a slug of the published method name
  source: "ours" for our rows, the citation key for published rows
  status: "ok", "not run" (ours, no files) or "not reported" (published, no number)
  mean:   percent; ours: mean over the n files (6 decimals); published: the number as published
  std:    percent, ours only, sample std (ddof=1), empty when n = 1
  n:      number of metrics files (ours); empty for published rows
  shown:  the text of the Markdown / LaTeX cell ("not reported" where those show "—")
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hacm.report import ReportError, one_line, read_document
from hacm.report.published import Published, PublishedRow, PublishedTable, format_published, load_published

PROG = "hacm.tables"
DATASETS = {"synthetic": "embedded synthetic dataset", "real": "real NTU RGB+D / PKU-MMD data"}
NOT_RUN = "not run"
NOT_REPORTED = "not reported"
DASH = "—"
OK = "ok"
CSV_FIELDS = ("table", "row", "label", "source", "column", "column_label", "status", "mean", "std", "n", "shown")
FIGURE_NAME = "pretraining.png"
_STEM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class PlanError(ReportError):
    """A plan that cannot be used; the message is one line naming the entry."""


# ----------------------------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class ColumnSpec:
    key: str
    label: str


@dataclass(frozen=True)
class RowSpec:
    key: str
    label: str
    cells: dict[str, tuple[Path, ...]]


@dataclass(frozen=True)
class TableSpec:
    name: str
    title: str
    metric: str
    columns: tuple[ColumnSpec, ...]
    rows: tuple[RowSpec, ...]
    published: str | None


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

    def table(self, name: str) -> TableSpec:
        return next(table for table in self.tables if table.name == name)


def _keys(raw: dict, where: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
    missing = [key for key in required if key not in raw]
    if missing:
        raise PlanError(f"{where}: missing {', '.join(repr(key) for key in missing)}")
    unknown = sorted(set(raw) - set(required) - set(optional))
    if unknown:
        raise PlanError(f"{where}: unknown key(s) {', '.join(repr(key) for key in unknown)}")


def _text(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PlanError(f"{where}: must be a non-empty string, got {value!r}")
    return one_line(value)


def _list(value: object, where: str, *, empty: bool = True) -> list:
    if not isinstance(value, list):
        raise PlanError(f"{where}: must be a list")
    if not empty and not value:
        raise PlanError(f"{where}: must not be empty")
    return value


def _object(value: object, where: str) -> dict:
    if not isinstance(value, dict):
        raise PlanError(f"{where}: must be an object")
    return value


def resolve_file(raw: object, plan_dir: Path, where: str) -> Path:
    """An existing file named by the plan: absolute, from the current directory, or from the plan's folder."""
    if not isinstance(raw, str) or not raw.strip():
        raise PlanError(f"{where}: must be a file name, got {raw!r}")
    name = raw
    path = Path(name)
    candidates = [path] if path.is_absolute() else [path, plan_dir / path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise PlanError(f"{where}: file not found: {name}")


def _column(raw: object, where: str) -> ColumnSpec:
    raw = _object(raw, where)
    _keys(raw, where, ("key", "label"))
    return ColumnSpec(key=_text(raw["key"], f"{where}.key"), label=_text(raw["label"], f"{where}.label"))


def _row(raw: object, where: str, columns: dict[str, ColumnSpec], plan_dir: Path) -> RowSpec:
    raw = _object(raw, where)
    _keys(raw, where, ("key", "label", "cells"))
    key = _text(raw["key"], f"{where}.key")
    label = _text(raw["label"], f"{where}.label")
    cells = {}
    for column, files in _object(raw["cells"], f"{where}.cells").items():
        here = f"{where}.cells[{column!r}]"
        if column not in columns:
            raise PlanError(f"{here}: no such column in this table (columns: {', '.join(columns)})")
        paths = []
        for index, name in enumerate(_list(files, here)):
            path = resolve_file(name, plan_dir, f"{here}[{index}]")
            if any(path.resolve() == other.resolve() for other in paths):
                raise PlanError(f"{here}[{index}]: {name} is listed twice")
            paths.append(path)
        cells[column] = tuple(paths)
    return RowSpec(key=key, label=label, cells=cells)


def _table(raw: object, where: str, plan_dir: Path, published: Published | None) -> TableSpec:
    raw = _object(raw, where)
    _keys(raw, where, ("name", "title", "metric", "columns", "rows"), ("published",))
    name = _text(raw["name"], f"{where}.name")
    if not _STEM.match(name) or name.lower() == "index":
        raise PlanError(f"{where}.name: {name!r} cannot be a file stem (letters, digits, '_', '-', '.'; not 'index')")
    columns = [_column(item, f"{where}.columns[{i}]")
               for i, item in enumerate(_list(raw["columns"], f"{where}.columns", empty=False))]
    by_key = {}
    for index, column in enumerate(columns):
        if column.key in by_key:
            raise PlanError(f"{where}.columns[{index}]: column key {column.key!r} appears twice")
        by_key[column.key] = column
    rows = [_row(item, f"{where}.rows[{i}]", by_key, plan_dir) for i, item in enumerate(_list(raw["rows"], f"{where}.rows"))]
    seen = set()
    for index, row in enumerate(rows):
        if row.key in seen:
            raise PlanError(f"{where}.rows[{index}]: row key {row.key!r} appears twice")
        seen.add(row.key)
    reference = raw.get("published")
    if reference is not None:
        reference = _text(reference, f"{where}.published")
        if published is not None and reference not in published.tables:
            known = ", ".join(sorted(published.tables))
            raise PlanError(f"{where}.published: unknown table {reference!r} in {published.path} (known: {known})")
    return TableSpec(name=name, title=_text(raw["title"], f"{where}.title"), metric=_text(raw["metric"], f"{where}.metric"),
                     columns=tuple(columns), rows=tuple(rows), published=reference)


def _curve(raw: object, where: str, plan_dir: Path) -> CurveSpec:
    raw = _object(raw, where)
    _keys(raw, where, ("label", "method", "benchmark", "log"))
    return CurveSpec(label=_text(raw["label"], f"{where}.label"), method=_text(raw["method"], f"{where}.method"),
                     benchmark=_text(raw["benchmark"], f"{where}.benchmark"),
                     log=resolve_file(raw["log"], plan_dir, f"{where}.log"))


def parse_plan(document: object, path: Path | str, published: Published | None = None) -> Plan:
    """The checked plan; `published` (when given) checks each table's `published` reference."""
    path = Path(path)
    where = str(path)
    document = _object(document, where)
    _keys(document, where, ("dataset", "tables"), ("curves", "accuracy_figure"))
    dataset = _text(document["dataset"], f"{where}: dataset")
    if dataset not in DATASETS:
        raise PlanError(f"{where}: dataset: must be one of {', '.join(DATASETS)}, got {dataset!r}")
    plan_dir = path.parent
    tables = [_table(item, f"{where}: tables[{i}]", plan_dir, published)
              for i, item in enumerate(_list(document["tables"], f"{where}: tables", empty=False))]
    names = set()
    for index, table in enumerate(tables):
        if table.name in names:
            raise PlanError(f"{where}: tables[{index}].name: {table.name!r} appears twice")
        names.add(table.name)
    curves_raw = document.get("curves")
    curves = [] if curves_raw is None else [
        _curve(item, f"{where}: curves[{i}]", plan_dir) for i, item in enumerate(_list(curves_raw, f"{where}: curves"))]
    figure = document.get("accuracy_figure")
    if figure is not None:
        figure = _text(figure, f"{where}: accuracy_figure")
        if figure not in names:
            raise PlanError(f"{where}: accuracy_figure: unknown table {figure!r} (plan tables: {', '.join(sorted(names))})")
    return Plan(path=path, dataset=dataset, tables=tuple(tables), curves=tuple(curves), accuracy_figure=figure)


def load_plan(path: Path | str, published: Published | None = None) -> Plan:
    document = read_document(path, json.loads, PlanError, "plan JSON", (json.JSONDecodeError,))
    return parse_plan(document, Path(path), published)


# ---------------------------------------------------------------------------------------------- cells


def read_metric(path: Path, metric: str, where: str = "") -> float:
    """The `metric` fraction of one metrics.json written by hacm.evaluate (checked against its schema)."""
    import jsonschema

    from hacm.eval.schema import validate_metrics

    prefix = f"{where}: " if where else ""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise PlanError(f"{prefix}{path}: not valid JSON: {error}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise PlanError(f"{prefix}{path}: cannot be read: {one_line(error)}") from None
    try:
        validate_metrics(document)
    except jsonschema.ValidationError as error:
        at = "/".join(str(part) for part in error.absolute_path) or "top level"
        raise PlanError(f"{prefix}{path}: not a hacm.evaluate metrics.json ({at}: {one_line(error.message)})") from None
    value = document.get(metric)
    if value is None:
        raise PlanError(f"{prefix}{path}: has no metric {metric!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not 0 <= value <= 1:
        raise PlanError(f"{prefix}{path}: metric {metric!r} must be a fraction in 0..1, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Cell:
    status: str                      # OK, NOT_RUN or NOT_REPORTED
    mean: float | None = None        # percent
    std: float | None = None         # percent, ours with n >= 2
    n: int | None = None             # files averaged (ours), None for published cells
    published: bool = False

    @classmethod
    def ours(cls, percents: list[float]) -> Cell:
        if not percents:
            return cls(status=NOT_RUN, n=0)
        values = np.asarray(percents, dtype=float)
        std = float(values.std(ddof=1)) if len(values) > 1 else None
        return cls(status=OK, mean=float(values.mean()), std=std, n=len(values))

    @classmethod
    def reported(cls, value: float | None) -> Cell:
        if value is None:
            return cls(status=NOT_REPORTED, published=True)
        return cls(status=OK, mean=float(value), published=True)

    def text(self, *, for_csv: bool = False) -> str:
        if self.status == NOT_RUN:
            return NOT_RUN
        if self.status == NOT_REPORTED:
            return NOT_REPORTED if for_csv else DASH
        if self.published:
            return format_published(self.mean)
        if self.std is None:
            return f"{self.mean:.1f}"
        return f"{self.mean:.1f} ± {self.std:.1f}"


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    source: str                      # "ours" or the citation key
    cells: dict[str, Cell]
    reference: PublishedRow | None = None

    @property
    def ours(self) -> bool:
        return self.reference is None


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    metric: str
    dataset: str
    columns: tuple[ColumnSpec, ...]
    rows: tuple[Row, ...]
    published: PublishedTable | None

    @property
    def our_rows(self) -> tuple[Row, ...]:
        return tuple(row for row in self.rows if row.ours)

    @property
    def published_rows(self) -> tuple[Row, ...]:
        return tuple(row for row in self.rows if not row.ours)

    def caption(self) -> str:
        return (f"{self.title}. Ours: {DATASETS[self.dataset]}, {self.metric} in %, mean ± sample std over runs "
                f"(seeds / draws; a single run shows its value). Published: as reported by each source "
                f"({DASH} = not reported).")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "row"


def our_label(label: str, dataset: str) -> str:
    return f"{label} (ours, {dataset})"


def published_label(row: PublishedRow) -> str:
    return f"{row.method} [{row.citation}]"


def build_table(spec: TableSpec, plan: Plan, published: Published | None, cache: dict | None = None) -> Table:
    """Read every metrics file of one plan table and put the published rows beside ours."""
    cache = {} if cache is None else cache
    rows = []
    for index, row in enumerate(spec.rows):
        cells = {}
        for column in spec.columns:
            percents = []
            for k, path in enumerate(row.cells.get(column.key, ())):
                key = (path.resolve(), spec.metric)
                if key not in cache:
                    where = f"{plan.path}: table {spec.name!r} row {row.key!r} column {column.key!r} file {k}"
                    cache[key] = read_metric(path, spec.metric, where)
                percents.append(100.0 * cache[key])
            cells[column.key] = Cell.ours(percents)
        rows.append(Row(key=row.key, label=our_label(row.label, plan.dataset), source="ours", cells=cells))
    reference = None
    if spec.published is not None:
        if published is None:
            raise PlanError(f"{plan.path}: table {spec.name!r} asks for published table {spec.published!r} "
                            "but no published-numbers file was given")
        reference = published.table(spec.published)
        taken = {row.key for row in rows}
        for item in reference.rows:
            key = slug(item.method)
            while key in taken:
                key += "-published"
            taken.add(key)
            cells = {column.key: Cell.reported(item.values.get(column.key)) for column in spec.columns}
            rows.append(Row(key=key, label=published_label(item), source=item.citation, cells=cells, reference=item))
    return Table(name=spec.name, title=spec.title, metric=spec.metric, dataset=plan.dataset,
                 columns=spec.columns, rows=tuple(rows), published=reference)


# -------------------------------------------------------------------------------------------- writers


def _number(value: float | None, digits: int = 6) -> str:
    return "" if value is None else f"{value:.{digits}f}".rstrip("0").rstrip(".")


def write_csv(table: Table, path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_FIELDS)
        for row in table.rows:
            for column in table.columns:
                cell = row.cells[column.key]
                writer.writerow([table.name, row.key, row.label, row.source, column.key, column.label, cell.status,
                                 _number(cell.mean), _number(cell.std), "" if cell.n is None else cell.n,
                                 cell.text(for_csv=True)])


def _md(text: str) -> str:
    return one_line(text).replace("\\", "\\\\").replace("|", "\\|")


def _run_counts(row: Row, table: Table) -> str:
    counts = [f"{column.label} {row.cells[column.key].n}" for column in table.columns
              if row.cells[column.key].status == OK]
    return ", ".join(counts) if counts else "no runs"


def markdown(table: Table, *, generated_from: str = "") -> str:
    lines = []
    if generated_from:
        lines += [f"<!-- generated by python -m {PROG} from {generated_from}; do not edit -->", ""]
    lines += [f"**Table ({table.name}): {_md(table.caption())}**", ""]
    lines.append("| Method | " + " | ".join(_md(column.label) for column in table.columns) + " |")
    lines.append("| --- |" + " ---: |" * len(table.columns))
    for row in table.rows:
        lines.append(f"| {_md(row.label)} | " + " | ".join(_md(row.cells[c.key].text()) for c in table.columns) + " |")
    lines += ["", "Notes:", ""]
    for row in table.our_rows:
        lines.append(f"- {_md(row.label)}: {table.metric} of hacm.evaluate metrics.json files; runs per cell: "
                     f"{_md(_run_counts(row, table))}.")
    if table.published is None:
        lines.append("- No published numbers are shown beside this table.")
    else:
        if not table.published_rows:
            lines.append(f"- Published table {table.published.name!r} lists no rows.")
        for row in table.published_rows:
            lines.append(f"- {_md(row.label)}: {_md(row.reference.describe_source())}")
        if table.published.not_found:
            lines.append(f"- Not found in the sources read: {_md(table.published.not_found)}")
    return "\n".join(lines) + "\n"


_LATEX = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
          "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}",
          "±": r"$\pm$", "—": "---", "–": "--", "<": r"\textless{}", ">": r"\textgreater{}"}


def latex_escape(text: str) -> str:
    """Plain text as LaTeX source: the special characters escaped, ± as $\\pm$, dashes as --- / --."""
    return "".join(_LATEX.get(char, char) for char in one_line(text))


def latex(table: Table, *, generated_from: str = "") -> str:
    lines = []
    if generated_from:
        lines.append(f"% generated by python -m {PROG} from {generated_from}; do not edit. Needs booktabs.")
    lines += [r"\begin{table}[t]", r"\centering", rf"\caption{{{latex_escape(table.caption())}}}",
              rf"\label{{tab:{slug(table.name)}}}", r"\begin{tabular}{l" + "c" * len(table.columns) + "}", r"\toprule",
              "Method & " + " & ".join(latex_escape(column.label) for column in table.columns) + r" \\", r"\midrule"]
    for index, row in enumerate(table.rows):
        if index and not row.ours and table.rows[index - 1].ours:
            lines.append(r"\midrule")
        lines.append(latex_escape(row.label) + " & "
                     + " & ".join(latex_escape(row.cells[c.key].text()) for c in table.columns) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\par\smallskip", r"\begin{minipage}{\linewidth}\footnotesize"]
    notes = [f"{row.label}: {table.metric} of hacm.evaluate metrics.json files; runs per cell: {_run_counts(row, table)}."
             for row in table.our_rows]
    if table.published is not None:
        notes += [f"{row.label}: {row.reference.describe_source()}" for row in table.published_rows]
        if table.published.not_found:
            notes.append(f"Not found in the sources read: {table.published.not_found}")
    lines.append((r" \\" + "\n").join(latex_escape(note) for note in notes) if notes else "")
    lines += [r"\end{minipage}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def index_markdown(plan: Plan, tables: list[Table], published: Published | None, figure: Path | None) -> str:
    lines = [f"<!-- generated by python -m {PROG} from {plan.path}; do not edit -->", "",
             f"# Results ({DATASETS[plan.dataset]})", "",
             f"Our numbers come from the {DATASETS[plan.dataset]}; published numbers from "
             + (f"`{published.path}`" if published is not None else "no published-numbers file") + ".", "",
             "## Tables", ""]
    for table in tables:
        extra = f", beside published table `{table.published.name}`" if table.published is not None else ""
        lines.append(f"- {_md(table.title)}{extra}: [Markdown]({table.name}.md) · [CSV]({table.name}.csv) · "
                     f"[LaTeX]({table.name}.tex)")
    lines += ["", "## Figure", ""]
    if figure is None:
        lines.append("No figure: the plan has no pretraining curves and no accuracy_figure.")
    else:
        lines += [f"[{figure.name}]({figure.name}): pretraining loss per epoch "
                  + (f"and bars of table `{plan.accuracy_figure}` (ours; error bars = sample std)."
                     if plan.accuracy_figure else "."), "", f"![pretraining]({figure.name})"]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------ run


def make_report(plan_path: Path | str, published_path: Path | str | None, out_dir: Path | str) -> list[Path]:
    """Everything `python -m hacm.tables` writes; returns the files written. Raises ReportError."""
    published = None if published_path is None else load_published(published_path)
    plan = load_plan(plan_path, published)
    cache: dict = {}
    tables = [build_table(spec, plan, published, cache) for spec in plan.tables]
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ReportError(f"{out_dir}: cannot create the output folder: {one_line(error)}") from None
    written = []
    for table in tables:
        for suffix, render in (("csv", None), ("md", markdown), ("tex", latex)):
            path = out_dir / f"{table.name}.{suffix}"
            if render is None:
                write_csv(table, path)
            else:
                path.write_text(render(table, generated_from=str(plan.path)), encoding="utf-8")
            written.append(path)
    figure = None
    if plan.curves or plan.accuracy_figure:
        from hacm.report.figures import plot_pretraining

        figure = out_dir / FIGURE_NAME
        bars = next((table for table in tables if table.name == plan.accuracy_figure), None)
        plot_pretraining(figure, plan.curves, bars)
        written.append(figure)
    index = out_dir / "index.md"
    index.write_text(index_markdown(plan, tables, published, figure), encoding="utf-8")
    written.append(index)
    return written
