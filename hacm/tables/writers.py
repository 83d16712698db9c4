"""The paper tables written out: CSV (tidy long format and the paired differences), Markdown and LaTeX with their
notes, and the index page (the formats are described in hacm.tables.report).
"""

from __future__ import annotations

import csv
from pathlib import Path

from hacm.cli import one_line
from hacm.tables.bootstrap import RESAMPLES, SEED
from hacm.tables.cells import (
    AS_PUBLISHED,
    CONFIDENCE_TEXT,
    CSV_FIELDS,
    DASH,
    DIFFERENCE_FIELDS,
    OK,
    PROG,
    Row,
    Table,
    slug,
    statistic_key,
)
from hacm.tables.logs import MASKING_GROUPS
from hacm.tables.plan import DATASETS, DIFFERENCES_SUFFIX, STATISTICS, ColumnSpec, Plan
from hacm.tables.published import Published


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


def differences_name(table: str) -> str:
    return f"{table}{DIFFERENCES_SUFFIX}.csv"
