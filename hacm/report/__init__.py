"""Reports: evaluation results turned into the paper's tables and figures (`python -m hacm.tables`).

published: the published numbers (config/published.yaml), loaded and validated.
tables:    the plan file, the table cells (mean ± std over runs), the CSV / Markdown / LaTeX writers.
figures:   the pretraining-loss and accuracy figure.
"""


class ReportError(ValueError):
    """Input that cannot be turned into a report; the message is one line naming what is wrong."""
