"""The cells of the paper tables and the tables themselves (our runs' values, the published numbers, intervals,
paired comparisons), read from metrics.json files: what hacm.tables.report builds and hacm.tables.writers writes.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hacm.cli import one_line
from hacm.methods import ABLATED_METHOD, METHODS, RANDOM
from hacm.tables.bootstrap import CONFIDENCE, Interval
from hacm.tables.logs import MASKING_GROUPS, last_masking_agreement
from hacm.tables.plan import ColumnSpec, DATASETS, DEFAULT_STATISTIC, PlanError, STATISTICS, TableSpec
from hacm.tables.published import PublishedRow, PublishedTable, format_published

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
REFERENCE_ROW = ABLATED_METHOD
BASELINE_ROWS = (RANDOM, *(key for key in METHODS if key != REFERENCE_ROW))
ABLATION_TABLE = "ablations"
FIGURE_NAME = "pretraining.png"


# ---------------------------------------------------------------------------------------------- cells


def read_metrics_file(path: Path, where: str = "") -> dict:
    """One metrics.json written by hacm.evaluate, checked against its schema."""
    import jsonschema

    from hacm.evaluate.schema import BEST_EPOCH_KEYS, validate_metrics

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
    """A row key from a published method's name (and a LaTeX label from a table's)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "row"
