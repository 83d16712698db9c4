"""Evaluation results (metrics.json files named by a plan) -> tables beside the published numbers.

The plan (its format and how it is checked): hacm.tables.plan; how the workflow builds it:
hacm.tables.layout. Every metrics.json must match hacm.evaluate.schema.METRICS_SCHEMA. Its values are
fractions 0..1, shown as percents: the plan's `statistic` "best" (the default) shows `best_<metric>`, the best over the epochs a
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

import functools
from pathlib import Path

import numpy as np

from hacm.cli import one_line
from hacm.files import file_sha256
from hacm.methods import RANDOM
from hacm.runs import base_method, encoder_run_method
from hacm.tables import ReportError
from hacm.tables.bootstrap import Interval, percentile_interval, resampled_means
from hacm.tables.cells import (
    ABLATION_TABLE,
    Agreement,
    BASELINE_ROWS,
    Cell,
    Comparison,
    FIGURE_NAME,
    REFERENCE_ROW,
    Row,
    Table,
    metric_value,
    read_metrics_file,
    shown_value,
    slug,
)
from hacm.tables.plan import STATISTICS, ColumnSpec, Plan, PlanError, RowSpec, TableSpec, load_plan
from hacm.tables.predictions import Predictions, check_run, check_same_test_set, predictions_file, read_predictions
from hacm.tables.published import Published, PublishedRow, load_published
from hacm.tables.writers import differences_name, index_markdown, latex, markdown, write_csv, write_differences_csv


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
