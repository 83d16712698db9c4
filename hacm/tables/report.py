"""Evaluation results (metrics.json files named by a plan) -> tables beside the published numbers.

The plan (its format, how the workflow builds it, how it is checked): hacm.tables.plan. Every
metrics.json must match hacm.eval.schema.METRICS_SCHEMA. Its values are fractions 0..1, shown as
percents: the plan's `statistic` "best" (the default) shows `best_<metric>`, the best over the epochs a
run scored the test split at, which is what the published rows report (the release and MAMP keep the
maximum over epochs); "last" shows `<metric>`, the last epoch's. The CSV gives both.

A row's `pretrain_logs` (hacm.pretrain metrics.jsonl files, one per seed) add a column "masking
agreement (groups)" to its table: per masking group, the last agreement the log records, mean over
the logs that record it (hacm.tables.logs).

A cell of ours with several files (seeds, semi-supervised draws) is mean ± sample std (ddof=1); one
file gives just the value; a column the row has no files for is "not run". Published cells are the
numbers as published; a number the source does not give is "—" ("not reported" in the CSV).

Uncertainty over test samples (hacm.tables.bootstrap): every metrics.json needs the predictions.csv
hacm.evaluate writes beside it (hacm.tables.predictions), of the same run (as many samples, the same
last-epoch accuracy to within one sample) and, within a column, of the same test samples in the same
order. Those predictions are the final evaluation's, so the intervals are of the LAST epoch's accuracy
whatever `statistic` shows. Each cell of ours with runs shows, after its value, "[low, high]": the 95 %
percentile interval of the cell's mean accuracy over 2000 resamples of the test samples (the same
resampled indices for every run and row of the column, fixed seed: reproducible bit for bit). Per
column, a paired bootstrap of the difference HA-CM − X (percentage points, the same resamples) for X
each of the rows "random", "mae", "mamp" that has runs there; in the table "ablations", X is every
other row. The differences are in the Markdown / LaTeX notes and in DIR/NAME_differences.csv.

Outputs, per plan table NAME: DIR/NAME.csv, DIR/NAME_differences.csv, DIR/NAME.md, DIR/NAME.tex; then
DIR/pretraining.png (when the plan has curves or an accuracy_figure) and DIR/index.md linking everything.

CSV (tidy long format, one line per row × column, in table order), columns:
    table, row, label, source, column, column_label, status, mean, std, n, shown, statistic,
    best_mean, best_std, last_mean, last_std, agreement_temporal, agreement_spatial, agreement_all,
    ci_low, ci_high, test_samples, resamples
  row:    our row key, or a slug of the published method name
  source: "ours" for our rows, the citation key for published rows
  status: "ok", "not run" (ours, no files) or "not reported" (published, no number)
  mean:   percent; ours: mean over the n files (6 decimals); published: the number as published
  std:    percent, ours only, sample std (ddof=1), empty when n = 1
  n:      number of metrics files (ours); empty for published rows
  shown:  the text of the Markdown cell ("not reported" where it shows "—"), with the interval
  statistic: which epoch mean / std / shown are: "best" or "last" (ours), "as published"
  best_mean, best_std, last_mean, last_std: ours, percent, the best and the last epoch (empty when a
          file does not record that statistic, and for published rows)
  agreement_<group>: the row's masking agreement of that group (share 0..1), empty when not recorded
  ci_low, ci_high: ours, percent, the bootstrap interval of the last-epoch mean (empty without runs)
  test_samples, resamples: ours, the test samples resampled and the number of resamples

Differences CSV (DIR/NAME_differences.csv, one line per comparison, column by column; only the
header when the table has none), columns:
    table, column, column_label, row_a, row_b, diff, ci_low, ci_high, excludes_zero, test_samples, resamples
  diff:   percentage points, row_a's last-epoch mean minus row_b's (row keys of the plan)
  ci_low, ci_high: the 95 % paired bootstrap interval of diff
  excludes_zero: "true" when the interval lies wholly above or below 0, else "false"
"""

from __future__ import annotations

import csv
import functools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hacm.cli import one_line
from hacm.files import file_sha256
from hacm.runs import RANDOM, base_method, encoder_run_method
from hacm.tables import ReportError
from hacm.tables.bootstrap import CONFIDENCE, RESAMPLES, SEED, Interval, percentile_interval, resampled_means
from hacm.tables.logs import MASKING_GROUPS, last_masking_agreement
from hacm.tables.predictions import (
    Predictions,
    check_run,
    check_same_test_set,
    predictions_file,
    read_predictions,
)
from hacm.tables.plan import (
    DATASETS,
    DEFAULT_STATISTIC,
    DIFFERENCES_SUFFIX,
    STATISTICS,
    ColumnSpec,
    Plan,
    PlanError,
    RowSpec,
    TableSpec,
    load_plan,
)
from hacm.tables.published import Published, PublishedRow, PublishedTable, format_published, load_published

PROG = "hacm.tables"
NOT_RUN = "not run"
NOT_REPORTED = "not reported"
DASH = "—"
OK = "ok"
AS_PUBLISHED = "as published"
CSV_FIELDS = ("table", "row", "label", "source", "column", "column_label", "status", "mean", "std", "n", "shown",
              "statistic", "best_mean", "best_std", "last_mean", "last_std",
              *(f"agreement_{group}" for group in MASKING_GROUPS), "ci_low", "ci_high", "test_samples", "resamples")
DIFFERENCE_FIELDS = ("table", "column", "column_label", "row_a", "row_b", "diff", "ci_low", "ci_high", "excludes_zero",
                     "test_samples", "resamples")
# Paired comparisons: HA-CM against each baseline row; in the ablation table against every variant.
REFERENCE_ROW = "hacm"
BASELINE_ROWS = ("random", "mae", "mamp")
ABLATION_TABLE = "ablations"
FIGURE_NAME = "pretraining.png"


# ---------------------------------------------------------------------------------------------- cells


def read_metrics_file(path: Path, where: str = "") -> dict:
    """One metrics.json written by hacm.evaluate, checked against its schema."""
    import jsonschema

    from hacm.eval.schema import BEST_EPOCH_KEYS, validate_metrics

    prefix = f"{where}: " if where else ""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise PlanError(f"{prefix}{path}: not valid JSON: {error}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise PlanError(f"{prefix}{path}: cannot be read: {one_line(error)}") from None
    try:
        validate_metrics(document, before_best_epoch=True)
        missing = [key for key in BEST_EPOCH_KEYS if key not in document]
        if missing:
            raise PlanError(f"{prefix}{path}: written before hacm.evaluate recorded the best epoch (no "
                            f"{', '.join(missing)}); rerun that evaluation")
        validate_metrics(document)
    except jsonschema.ValidationError as error:
        at = "/".join(str(part) for part in error.absolute_path) or "top level"
        raise PlanError(f"{prefix}{path}: not a hacm.evaluate metrics.json ({at}: {one_line(error.message)})") from None
    return document


def statistic_key(metric: str, statistic: str) -> str:
    """The metrics.json key of `metric` at the best or the last epoch."""
    return f"best_{metric}" if statistic == "best" else metric


def metric_value(document: dict, metric: str, statistic: str, *, path: Path, where: str = "") -> float | None:
    """The fraction a metrics document gives for `metric` at `statistic`; None when it records none."""
    value = document.get(statistic_key(metric, statistic))
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not 0 <= value <= 1:
        prefix = f"{where}: " if where else ""
        raise PlanError(f"{prefix}{path}: metric {statistic_key(metric, statistic)!r} must be a fraction in 0..1, "
                        f"got {value!r}")
    return float(value)


def shown_value(document: dict, metric: str, statistic: str, *, path: Path, where: str = "") -> float:
    """The fraction a table cell shows: `metric_value`, whose absence is an error naming the file."""
    value = metric_value(document, metric, statistic, path=path, where=where)
    if value is not None:
        return value
    prefix = f"{where}: " if where else ""
    if metric in document:
        raise PlanError(f"{prefix}{path}: has no {statistic_key(metric, statistic)!r} (hacm.evaluate records the "
                        f"best epoch of top1 only); set the plan's \"statistic\" to \"last\"")
    raise PlanError(f"{prefix}{path}: has no metric {metric!r}")


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
class Agreement:
    """A row's masking agreement: per group, the mean over its pretraining logs of each one's last record."""

    means: dict[str, float]          # group -> share 0..1, only the groups some log records
    logs: int                        # pretraining logs read

    @classmethod
    def of_logs(cls, paths: tuple[Path, ...]) -> Agreement:
        per_log = [last_masking_agreement(path) for path in paths]
        means = {group: float(np.mean([shares[group] for shares in per_log if group in shares]))
                 for group in MASKING_GROUPS if any(group in shares for shares in per_log)}
        return cls(means=means, logs=len(paths))

    def text(self, groups: tuple[str, ...]) -> str:
        if not self.means:
            return DASH
        return " / ".join(f"{self.means[group]:.2f}" if group in self.means else DASH for group in groups)


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    source: str                      # "ours" or the citation key
    cells: dict[str, Cell]           # what the tables show (ours: at the plan's statistic)
    reference: PublishedRow | None = None
    # Ours: statistic -> column -> cell; None where a file does not record that statistic.
    by_statistic: dict[str, dict[str, Cell | None]] | None = None
    agreement: Agreement | None = None  # ours, when the plan gives the row pretraining logs
    objective: str | None = None  # ours: what its encoders were pretrained to minimise (the plan's)
    # Ours: column -> bootstrap interval of the cell's last-epoch mean (percent), where the cell has runs.
    intervals: dict[str, Interval] = field(default_factory=dict)

    @property
    def ours(self) -> bool:
        return self.reference is None


@dataclass(frozen=True)
class Comparison:
    """A paired bootstrap of row_a − row_b in one column: last-epoch mean accuracies, percentage points."""

    column: ColumnSpec
    row_a: str
    row_b: str
    label_a: str                     # the plan's row labels
    label_b: str
    interval: Interval

    def text(self) -> str:
        interval = self.interval
        return (f"{self.label_a} − {self.label_b}, {self.column.label}: {interval.estimate:+.1f} points, "
                f"{CONFIDENCE_TEXT} CI {bracket(interval)} (paired bootstrap over {interval.samples} test samples, "
                f"{interval.resamples} resamples; {'excludes' if interval.excludes_zero else 'includes'} 0).")


CONFIDENCE_TEXT = f"{100 * CONFIDENCE:g} %"


def bracket(interval: Interval) -> str:
    return f"[{interval.low:.1f}, {interval.high:.1f}]"


@dataclass(frozen=True)
class Table:
    """A plan table (its name, title, metric, columns) filled with rows of ours and published rows."""

    spec: TableSpec
    dataset: str
    rows: tuple[Row, ...]
    published: PublishedTable | None
    statistic: str = DEFAULT_STATISTIC
    comparisons: tuple[Comparison, ...] = ()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def title(self) -> str:
        return self.spec.title

    @property
    def metric(self) -> str:
        return self.spec.metric

    @property
    def columns(self) -> tuple[ColumnSpec, ...]:
        return self.spec.columns

    @property
    def our_rows(self) -> tuple[Row, ...]:
        return tuple(row for row in self.rows if row.ours)

    @property
    def published_rows(self) -> tuple[Row, ...]:
        return tuple(row for row in self.rows if not row.ours)

    @property
    def shows_agreement(self) -> bool:
        return any(row.agreement is not None for row in self.rows)

    @property
    def agreement_groups(self) -> tuple[str, ...]:
        recorded = {group for row in self.rows if row.agreement is not None for group in row.agreement.means}
        return tuple(group for group in MASKING_GROUPS if group in recorded)

    def agreement_header(self) -> str:
        groups = self.agreement_groups
        return "masking agreement" + (f" ({' / '.join(groups)})" if groups else "")

    def agreement_text(self, row: Row) -> str:
        return DASH if row.agreement is None else row.agreement.text(self.agreement_groups)

    def header(self) -> list[str]:
        """The column labels after "Method"."""
        return [column.label for column in self.columns] + ([self.agreement_header()] if self.shows_agreement else [])

    @property
    def shows_intervals(self) -> bool:
        return any(row.intervals for row in self.rows)

    def shown(self, row: Row, *, escape=lambda text: text, small=lambda text: text, for_csv: bool = False) -> list[str]:
        """The cells of a row after its label: each value, then its interval in brackets; for LaTeX, `escape` each
        text and `small` the interval."""
        cells = []
        for column in self.columns:
            text = escape(row.cells[column.key].text(for_csv=for_csv))
            interval = row.intervals.get(column.key)
            cells.append(text if interval is None else f"{text} {small(escape(bracket(interval)))}")
        return cells + ([escape(self.agreement_text(row))] if self.shows_agreement else [])

    def caption(self) -> str:
        intervals = (f"; in brackets the {CONFIDENCE_TEXT} bootstrap interval over test samples of the last-epoch "
                     "mean (notes)") if self.shows_intervals else ""
        return (f"{self.title}. Ours: {DATASETS[self.dataset]}, {self.metric} in %, {STATISTICS[self.statistic]}; "
                f"mean ± sample std over runs (seeds / draws; a single run shows its value){intervals}. Published: "
                f"as reported by each source ({DASH} = not reported).")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "row"


def our_label(label: str, dataset: str) -> str:
    return f"{label} (ours, {dataset})"


def published_label(row: PublishedRow) -> str:
    return f"{row.method} [{row.citation}]"


def build_table(spec: TableSpec, plan: Plan, published: Published | None, cache: dict | None = None) -> Table:
    """Read every metrics file of one plan table and put the published rows beside ours."""
    cache = {} if cache is None else cache
    by_row = {}
    for row in spec.rows:
        by_statistic = {statistic: {} for statistic in STATISTICS}
        for column in spec.columns:
            for statistic, cell in _our_cells(spec, row, column, plan, cache).items():
                by_statistic[statistic][column.key] = cell
        by_row[row.key] = by_statistic
    intervals = {row.key: {} for row in spec.rows}
    comparisons = []
    for column in spec.columns:
        column_intervals, column_comparisons = _column_uncertainty(spec, column, plan, cache)
        for key, interval in column_intervals.items():
            intervals[key][column.key] = interval
        comparisons += column_comparisons
    rows = [Row(key=row.key, label=our_label(row.label, plan.dataset), source="ours",
                cells=by_row[row.key][plan.statistic], by_statistic=by_row[row.key],
                agreement=_agreement(spec, row, plan), intervals=intervals[row.key], objective=row.objective)
            for row in spec.rows]
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
    return Table(spec=spec, dataset=plan.dataset, rows=tuple(rows), published=reference, statistic=plan.statistic,
                 comparisons=tuple(comparisons))


def _agreement(spec: TableSpec, row: RowSpec, plan: Plan) -> Agreement | None:
    if not row.pretrain_logs:
        return None
    try:
        return Agreement.of_logs(row.pretrain_logs)
    except ReportError as error:
        raise PlanError(f"{plan.path}: table {spec.name!r} row {row.key!r} pretrain_logs: {error}") from None


def _file_where(plan: Plan, spec: TableSpec, row: RowSpec, column: ColumnSpec, k: int) -> str:
    return f"{plan.path}: table {spec.name!r} row {row.key!r} column {column.key!r} file {k}"


def _metrics(path: Path, where: str, cache: dict) -> dict:
    """A metrics.json, read once per report."""
    if path.resolve() not in cache:
        cache[path.resolve()] = read_metrics_file(path, where)
    return cache[path.resolve()]


def encoder_mismatch(encoder: dict, method: str, weights: dict | None = None) -> str | None:
    """Why a run's encoder (metrics.json `encoder`) is not the `method` row's, or None: a random
    encoder's result in a pretrained row, another method's, or another run folder's (an ablation's).
    `weights` ({"method", "path", "sha256"}): the row is the authors' published weights, and the run must
    have read exactly that file (its sha256) as that method."""
    pretrained = encoder.get("sha256") is not None
    if weights is not None:
        if encoder.get("method") != weights["method"]:
            return (f"is the result of a {encoder.get('method')!r} encoder, but this row is {weights['method']!r} "
                    f"({weights['path']})")
        if encoder.get("sha256") != weights["sha256"]:
            return (f"is the result of the weights {encoder.get('path')} (sha256 {str(encoder.get('sha256'))[:12]}), "
                    f"but this row's are {weights['path']} (sha256 {weights['sha256'][:12]})")
        return None
    if method == RANDOM:
        return None if not pretrained else (f"is the result of a pretrained {encoder.get('method')!r} encoder "
                                            f"({encoder.get('path')}), but this row is the random encoder")
    if not pretrained:
        return f"is the result of a randomly initialised encoder ({encoder.get('method')!r}), but this row is {method!r}"
    if encoder.get("method") != base_method(method):
        return f"is the result of a {encoder.get('method')!r} encoder, but this row is {method!r}"
    folder = encoder_run_method(encoder.get("path"))
    if folder is not None and folder != method:
        return f"is the result of the encoder {encoder.get('path')} (run {folder!r}), but this row is {method!r}"
    return None


@functools.lru_cache(maxsize=None)
def _weights_sha256(path: Path) -> str:
    return file_sha256(path)


def _row_weights(row: RowSpec, column: ColumnSpec) -> dict | None:
    """The published weights file a cell of a published-weights row must come from, with its sha256."""
    if row.weights is None:
        return None
    path = row.weights.files.get(column.benchmark or column.key)
    if path is None:  # no file for this column: any cell there is not of this row's weights
        return {"method": row.weights.method, "path": f"(no file for {column.key})", "sha256": ""}
    return {"method": row.weights.method, "path": str(path), "sha256": _weights_sha256(path.resolve())}


def _our_cells(spec: TableSpec, row: RowSpec, column: ColumnSpec, plan: Plan, cache: dict) -> dict[str, Cell | None]:
    """One cell of ours at each statistic: the plan's must be in every file, the other may be missing (None)."""
    documents = []
    for k, path in enumerate(row.cells.get(column.key, ())):
        where = _file_where(plan, spec, row, column, k)
        document = _metrics(path, where, cache)
        # A file of another protocol or benchmark must not fill this cell (a copied or misnamed run).
        for what, expected, found in (("protocol", spec.protocol, document.get("protocol")),
                                      ("benchmark", column.benchmark, document.get("dataset", {}).get("benchmark"))):
            if expected is not None and found != expected:
                raise PlanError(f"{where}: {path} is a {what} {found!r} result, but this cell is {what} {expected!r}")
        if row.method is not None and (wrong := encoder_mismatch(document.get("encoder") or {}, row.method,
                                                                 _row_weights(row, column))):
            raise PlanError(f"{where}: {path} {wrong}")
        documents.append((path, where, document))
    cells = {}
    for statistic in STATISTICS:
        if statistic == plan.statistic:
            values = [shown_value(document, spec.metric, statistic, path=path, where=where)
                      for path, where, document in documents]
        else:
            values = [metric_value(document, spec.metric, statistic, path=path, where=where)
                      for path, where, document in documents]
        cells[statistic] = None if None in values else Cell.ours([100.0 * value for value in values])
    return cells


def compared_rows(table: str, keys: list[str]) -> list[tuple[str, str]]:
    """The (a, b) row pairs whose difference a − b is bootstrapped, among the rows `keys` that have runs."""
    if REFERENCE_ROW not in keys:
        return []
    return [(REFERENCE_ROW, key) for key in keys
            if key != REFERENCE_ROW and (table == ABLATION_TABLE or key in BASELINE_ROWS)]


def _column_runs(spec: TableSpec, column: ColumnSpec, plan: Plan, cache: dict) -> dict[str, list[Predictions]]:
    """Our rows' runs in one column (rows without any left out): each run's predictions.csv, checked against its
    metrics.json, all on the test samples of the column's first run."""
    runs: dict[str, list[Predictions]] = {}
    first = None
    for row in spec.rows:
        for k, path in enumerate(row.cells.get(column.key, ())):
            where = _file_where(plan, spec, row, column, k)
            document = _metrics(path, where, cache)
            try:
                predictions = read_predictions(predictions_file(path), spec.metric)
                check_run(predictions, document, spec.metric, path)
                if first is None:
                    first = predictions
                check_same_test_set(first, predictions)
            except ReportError as error:
                raise PlanError(f"{where}: {error}") from None
            runs.setdefault(row.key, []).append(predictions)
    return runs


def _column_uncertainty(spec: TableSpec, column: ColumnSpec, plan: Plan,
                        cache: dict) -> tuple[dict[str, Interval], list[Comparison]]:
    """Per row of ours with runs in this column, the bootstrap interval of its mean accuracy; and the paired
    differences between rows. One resampling of the test samples serves every row, hence the pairing."""
    runs = _column_runs(spec, column, plan, cache)
    if not runs:
        return {}, []
    keys = list(runs)
    # Percent per test sample, mean over the cell's runs: its mean over the samples is the cell's mean accuracy.
    per_sample = np.stack([100.0 * np.mean([run.hits for run in runs[key]], axis=0) for key in keys])
    resampled = resampled_means(per_sample)
    estimates = per_sample.mean(axis=1)
    samples = per_sample.shape[1]
    intervals = {key: percentile_interval(estimates[i], resampled[i], samples) for i, key in enumerate(keys)}
    labels = {row.key: row.label for row in spec.rows}
    comparisons = []
    for a, b in compared_rows(spec.name, keys):
        i, j = keys.index(a), keys.index(b)
        difference = percentile_interval(estimates[i] - estimates[j], resampled[i] - resampled[j], samples)
        comparisons.append(Comparison(column=column, row_a=a, row_b=b, label_a=labels[a], label_b=labels[b],
                                      interval=difference))
    return intervals, comparisons


# -------------------------------------------------------------------------------------------- writers


def _number(value: float | None, digits: int = 6) -> str:
    return "" if value is None else f"{value:.{digits}f}".rstrip("0").rstrip(".")


def _statistic_fields(row: Row, column: ColumnSpec) -> list[str]:
    """best_mean, best_std, last_mean, last_std of one cell of ours (empty for published rows)."""
    fields = []
    for statistic in ("best", "last"):
        cell = None if row.by_statistic is None else row.by_statistic[statistic][column.key]
        fields += ["", ""] if cell is None else [_number(cell.mean), _number(cell.std)]
    return fields


def _agreement_fields(row: Row) -> list[str]:
    means = {} if row.agreement is None else row.agreement.means
    return [_number(means.get(group)) for group in MASKING_GROUPS]


def _interval_fields(row: Row, column: ColumnSpec) -> list[object]:
    """ci_low, ci_high, test_samples, resamples of one cell (empty where it has no interval)."""
    interval = row.intervals.get(column.key)
    if interval is None:
        return ["", "", "", ""]
    return [_number(interval.low), _number(interval.high), interval.samples, interval.resamples]


def _write_rows(path: Path, header: tuple[str, ...], rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def write_csv(table: Table, path: Path) -> None:
    lines = []
    for row in table.rows:
        statistic = table.statistic if row.ours else AS_PUBLISHED
        for column, shown in zip(table.columns, table.shown(row, for_csv=True)):
            cell = row.cells[column.key]
            lines.append([table.name, row.key, row.label, row.source, column.key, column.label, cell.status,
                          _number(cell.mean), _number(cell.std), "" if cell.n is None else cell.n, shown, statistic,
                          *_statistic_fields(row, column), *_agreement_fields(row), *_interval_fields(row, column)])
    _write_rows(path, CSV_FIELDS, lines)


def write_differences_csv(table: Table, path: Path) -> None:
    """The paired differences of a table (DIFFERENCE_FIELDS), one line per comparison; only the header if none."""
    _write_rows(path, DIFFERENCE_FIELDS, [
        [table.name, item.column.key, item.column.label, item.row_a, item.row_b, _number(item.interval.estimate),
         _number(item.interval.low), _number(item.interval.high), str(item.interval.excludes_zero).lower(),
         item.interval.samples, item.interval.resamples] for item in table.comparisons])


def _md(text: str) -> str:
    return one_line(text).replace("\\", "\\\\").replace("|", "\\|")


def _run_counts(row: Row, table: Table) -> str:
    counts = [f"{column.label} {row.cells[column.key].n}" for column in table.columns
              if row.cells[column.key].status == OK]
    return ", ".join(counts) if counts else "no runs"


def _our_note(row: Row, table: Table) -> str:
    shown = statistic_key(table.metric, table.statistic)
    other = next(statistic for statistic in STATISTICS if statistic != table.statistic)
    note = (f"{row.label}: {shown} ({table.statistic} epoch) of hacm.evaluate metrics.json files, the {other} epoch "
            f"in the CSV ({other}_mean); runs per cell: {_run_counts(row, table)}")
    if row.agreement is not None:
        note += f"; masking agreement over {row.agreement.logs} pretraining log(s)"
    if row.objective is not None:
        note += f"; pretrained on {row.objective}"
    return note + "."


AGREEMENT_NOTE = ("Masking agreement: per masking group, the share of kept tokens that random masking with the same "
                  "noise would also keep (1 = the criterion changes nothing); the last value each pretraining log "
                  f"records, mean over the row's logs ({DASH} = not recorded).")


def _interval_note(table: Table) -> str:
    note = (f"Brackets: {CONFIDENCE_TEXT} percentile bootstrap interval of the last epoch's {table.metric} (each "
            f"run's predictions.csv, written by its final evaluation), mean over the cell's runs; {RESAMPLES} "
            f"resamples of the test samples with replacement (seed {SEED}), the same resampled samples for every "
            "run and row of a column")
    if table.statistic != "last":
        note += f"; it is not an interval of the {table.statistic}-epoch value beside it (last epoch: CSV last_mean)"
    return note + "."


def notes(table: Table) -> list[str]:
    """The footnotes under a table (plain text): where our numbers and the published ones come from, the
    bootstrap intervals and the paired differences."""
    lines = [_our_note(row, table) for row in table.our_rows]
    if table.shows_intervals:
        lines.append(_interval_note(table))
    lines += [comparison.text() for comparison in table.comparisons]
    if table.shows_agreement:
        lines.append(AGREEMENT_NOTE)
    if table.published is None:
        lines.append("No published numbers are shown beside this table.")
        return lines
    if not table.published_rows:
        lines.append(f"Published table {table.published.name!r} lists no rows.")
    lines += [f"{row.label}: {row.reference.describe_source()}" for row in table.published_rows]
    if table.published.not_found:
        lines.append(f"Not found in the sources read: {table.published.not_found}")
    return lines


def markdown(table: Table, *, generated_from: str = "") -> str:
    lines = []
    if generated_from:
        lines += [f"<!-- generated by python -m {PROG} from {generated_from}; do not edit -->", ""]
    lines += [f"**Table ({table.name}): {_md(table.caption())}**", ""]
    header = table.header()
    lines.append("| Method | " + " | ".join(_md(label) for label in header) + " |")
    lines.append("| --- |" + " ---: |" * len(header))
    for row in table.rows:
        lines.append(f"| {_md(row.label)} | " + " | ".join(_md(text) for text in table.shown(row)) + " |")
    lines += ["", "Notes:", ""]
    lines += [f"- {_md(note)}" for note in notes(table)]
    return "\n".join(lines) + "\n"


_LATEX = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
          "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}",
          "±": r"$\pm$", "−": "$-$", "→": r"$\rightarrow$", "—": "---", "–": "--", "<": r"\textless{}",
          ">": r"\textgreater{}"}


def latex_escape(text: str) -> str:
    """Plain text as LaTeX source: the special characters escaped, ± as $\\pm$, − as $-$, → as $\\rightarrow$,
    dashes as --- / --."""
    return "".join(_LATEX.get(char, char) for char in one_line(text))


def latex(table: Table, *, generated_from: str = "") -> str:
    lines = []
    if generated_from:
        lines.append(f"% generated by python -m {PROG} from {generated_from}; do not edit. Needs booktabs.")
    header = table.header()
    lines += [r"\begin{table}[t]", r"\centering", rf"\caption{{{latex_escape(table.caption())}}}",
              rf"\label{{tab:{slug(table.name)}}}", r"\begin{tabular}{l" + "c" * len(header) + "}", r"\toprule",
              "Method & " + " & ".join(latex_escape(label) for label in header) + r" \\", r"\midrule"]
    for index, row in enumerate(table.rows):
        if index and not row.ours and table.rows[index - 1].ours:
            lines.append(r"\midrule")
        cells = table.shown(row, escape=latex_escape, small=lambda text: rf"{{\scriptsize {text}}}")
        lines.append(latex_escape(row.label) + " & " + " & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\par\smallskip", r"\begin{minipage}{\linewidth}\footnotesize"]
    lines.append((r" \\" + "\n").join(latex_escape(note) for note in notes(table)))
    lines += [r"\end{minipage}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def index_markdown(plan: Plan, tables: list[Table], published: Published | None, figure: Path | None) -> str:
    lines = [f"<!-- generated by python -m {PROG} from {plan.path}; do not edit -->", "",
             f"# Results ({DATASETS[plan.dataset]})", "",
             f"Our numbers come from the {DATASETS[plan.dataset]}; published numbers from "
             + (f"`{published.path}`" if published is not None else "no published-numbers file") + ". "
             f"Our cells show the {STATISTICS[plan.statistic]}; each CSV also gives the other epoch. In brackets: "
             f"the {CONFIDENCE_TEXT} bootstrap interval over test samples of the last-epoch mean; each table's "
             "paired-differences CSV gives HA-CM minus each baseline (ablations: minus each variant) per column.", "",
             "## Tables", ""]
    for table in tables:
        extra = f", beside published table `{table.published.name}`" if table.published is not None else ""
        lines.append(f"- {_md(table.title)}{extra}: [Markdown]({table.name}.md) · [CSV]({table.name}.csv) · "
                     f"[LaTeX]({table.name}.tex) · [paired differences]({differences_name(table.name)})")
    lines += ["", "## Figure", ""]
    if figure is None:
        lines.append("No figure: the plan has no pretraining curves and no accuracy_figure.")
    else:
        lines += [f"[{figure.name}]({figure.name}): pretraining loss per epoch "
                  + (f"and bars of table `{plan.accuracy_figure}` (ours; error bars = sample std)."
                     if plan.accuracy_figure else "."), "", f"![pretraining]({figure.name})"]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------ run


def differences_name(table: str) -> str:
    return f"{table}{DIFFERENCES_SUFFIX}.csv"


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
        for name, write in ((f"{table.name}.csv", write_csv), (differences_name(table.name), write_differences_csv)):
            write(table, out_dir / name)
            written.append(out_dir / name)
        for suffix, render in (("md", markdown), ("tex", latex)):
            path = out_dir / f"{table.name}.{suffix}"
            path.write_text(render(table, generated_from=str(plan.path)), encoding="utf-8")
            written.append(path)
    figure = None
    if plan.curves or plan.accuracy_figure:
        from hacm.tables.figures import plot_pretraining

        figure = out_dir / FIGURE_NAME
        bars = next((table for table in tables if table.name == plan.accuracy_figure), None)
        plot_pretraining(figure, plan.curves, bars)
        written.append(figure)
    index = out_dir / "index.md"
    index.write_text(index_markdown(plan, tables, published, figure), encoding="utf-8")
    written.append(index)
    return written
