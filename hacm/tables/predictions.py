"""Per-sample test results of an evaluation run: the predictions.csv hacm.evaluate writes beside metrics.json.

Columns (hacm.evaluate.metrics.write_predictions): name, label, prediction, top5 (the five best classes,
space-separated, best first), correct. The file holds the predictions of the LAST epoch's model (the
final evaluation), so what is computed from it describes the last-epoch accuracy (metrics.json `top1`,
`top5`), not the best epoch.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hacm.cli import one_line
from hacm.tables import ReportError, read_document

PREDICTIONS = "predictions.csv"
REQUIRED_COLUMNS = ("name", "label", "prediction", "top5")
# The metrics a predictions.csv gives per sample.
PER_SAMPLE_METRICS = ("top1", "top5")


@dataclass(frozen=True)
class Predictions:
    path: Path
    names: np.ndarray      # (n,) str: the test samples, in file order
    labels: np.ndarray     # (n,) int64: their true classes
    hits: np.ndarray       # (n,) bool: whether the metric counts the sample as right

    @property
    def accuracy(self) -> float:
        return float(self.hits.mean())


def predictions_file(metrics_path: Path) -> Path:
    """The predictions.csv of the run that wrote `metrics_path`: the file beside it."""
    return Path(metrics_path).with_name(PREDICTIONS)


def read_predictions(path: Path, metric: str) -> Predictions:
    """One predictions.csv, its per-sample hits for `metric` ("top1" or "top5"); ReportError naming the file."""
    if metric not in PER_SAMPLE_METRICS:
        raise ReportError(f"{path}: gives no per-sample {metric!r} (only {', '.join(PER_SAMPLE_METRICS)})")
    if not Path(path).is_file():
        raise ReportError(f"{path}: not found; hacm.evaluate writes it beside metrics.json (rerun that evaluation)")
    rows = read_document(path, lambda text: list(csv.reader(text.splitlines())), ReportError, "predictions CSV",
                         (csv.Error,))
    columns = _columns(rows, Path(path))
    labels = _integers(columns["label"], path, "label")
    if metric == "top1":
        hits = _integers(columns["prediction"], path, "prediction") == labels
    else:
        hits = np.array([str(label) in ranked.split() for label, ranked in zip(labels, columns["top5"])])
    return Predictions(path=Path(path), names=np.asarray(columns["name"], dtype=np.str_), labels=labels, hits=hits)


def _columns(rows: list[list[str]], path: Path) -> dict[str, tuple[str, ...]]:
    """The required columns of a parsed predictions.csv by name; every row as wide as the header."""
    if not rows:
        raise ReportError(f"{path}: empty; expected the header {','.join(REQUIRED_COLUMNS)},correct")
    header = rows[0]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise ReportError(f"{path}: not a hacm.evaluate predictions.csv (no column {', '.join(missing)}); "
                          "rerun that evaluation")
    if len(rows) == 1:
        raise ReportError(f"{path}: lists no test samples")
    for number, fields in enumerate(rows[1:], start=2):
        if len(fields) != len(header):
            raise ReportError(f"{path}:{number}: {len(fields)} fields, the header has {len(header)}")
    values = list(zip(*rows[1:]))
    return {name: values[header.index(name)] for name in REQUIRED_COLUMNS}


def _integers(texts: tuple[str, ...], path: Path, column: str) -> np.ndarray:
    try:
        return np.asarray(texts, dtype=np.int64)
    except ValueError:
        number, text = next(((number, text) for number, text in enumerate(texts, start=2) if not _is_integer(text)),
                            ("?", ""))
        raise ReportError(f"{path}:{number}: {column} must be a class number, got {one_line(text)!r}") from None


def _is_integer(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def check_run(predictions: Predictions, document: dict, metric: str, metrics_path: Path) -> None:
    """A predictions.csv and the metrics.json beside it are of one run: as many samples, the same last-epoch
    accuracy (to within one sample: hacm.evaluate scores ties between classes separately)."""
    samples = len(predictions.names)
    if document.get("num_test") != samples:
        raise ReportError(f"{predictions.path}: {samples} test samples but {metrics_path} has num_test "
                          f"{document.get('num_test')!r}; the two files are not of one run")
    recorded = document.get(metric)
    if recorded is not None and abs(predictions.accuracy - recorded) > 1 / samples:
        raise ReportError(f"{predictions.path}: {metric} {predictions.accuracy:.4f} but {metrics_path} gives "
                          f"{recorded:.4f} for the last epoch; the two files are not of one run")


def check_same_test_set(first: Predictions, other: Predictions) -> None:
    """Two runs scored the same test samples in the same order, or a ReportError naming both files."""
    if len(first.names) != len(other.names):
        difference = f"{len(first.names)} vs {len(other.names)} samples"
    elif not np.array_equal(first.names, other.names):
        at = int(np.flatnonzero(first.names != other.names)[0])
        difference = f"sample {at + 1} is {str(first.names[at])!r} vs {str(other.names[at])!r}"
    elif not np.array_equal(first.labels, other.labels):
        at = int(np.flatnonzero(first.labels != other.labels)[0])
        difference = f"sample {str(first.names[at])!r} has label {first.labels[at]} vs {other.labels[at]}"
    else:
        return
    raise ReportError(f"{first.path} and {other.path} are not of the same test samples in the same order "
                      f"({difference})")
