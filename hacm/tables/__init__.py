"""The paper's tables: evaluation results beside the published numbers, with figures
(`python -m hacm.tables plan | render`, the command in __main__.py).

layout:    the paper's tables laid out from the workflow config: tables, columns and their keys, rows, run files.
plan:      the plan's format, checked and loaded (`python -m hacm.tables plan` writes the workflow's plan file).
published: the published numbers (config/published.yaml), loaded and validated.
schemas:   checking a document against its JSON Schema, with one-line errors.
report:    the table cells (mean ± std over runs), the CSV / Markdown / LaTeX writers.
figures:   the pretraining-loss and accuracy figure.
logs:      pretraining metrics.jsonl files: epoch records and the masking agreement they carry.
predictions: an evaluation run's predictions.csv (per test sample), checked against its metrics.json.
bootstrap: percentile intervals over resampled test samples (paired when rows share the resamples).
"""

from hacm.cli import one_line


class ReportError(ValueError):
    """Input that cannot be turned into a report; the message is one line naming what is wrong."""


def read_document(path, parse, error: type[ReportError], what: str, syntax_errors: tuple[type[Exception], ...]):
    """`parse(text)` of a file, every failure as `error` with one line naming the file and the cause."""
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: {what} not found")
    try:
        return parse(path.read_text(encoding="utf-8"))
    except syntax_errors as cause:
        raise error(f"{path}: not valid {what}: {one_line(cause)}") from None
    except (OSError, UnicodeDecodeError) as cause:
        raise error(f"{path}: cannot be read: {one_line(cause)}") from None
