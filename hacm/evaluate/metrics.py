"""Evaluation outputs: accuracies, per-class accuracy, predictions table, confusion matrix (schema: hacm.evaluate.schema)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import torch


def topk_accuracy(logits: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    k = min(k, logits.shape[1])
    top = logits.topk(k, dim=1).indices
    return float((top == labels[:, None]).any(dim=1).float().mean())


def best_test_epoch(records: list[dict], *, last_epoch: int, last_top1: float) -> tuple[float, int]:
    """(best test top-1, its epoch) over the epochs the test split was scored at during training (the
    metrics.jsonl epoch records with test_top1) and the final evaluation of the last epoch; on a tie the
    earliest epoch. The release and MAMP report this best value; `top1` stays the last epoch's."""
    scored = {int(r["epoch"]): float(r["test_top1"]) for r in records
              if r.get("kind") == "epoch" and r.get("test_top1") is not None}
    scored[last_epoch] = last_top1  # the final evaluation is the last epoch's score of record
    epoch = max(scored, key=lambda e: (scored[e], -e))
    return scored[epoch], epoch


def per_class_accuracy(predictions: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy of each class present in the test split, keyed by the 0-based class as text."""
    return {str(int(c)): float((predictions[labels == c] == c).mean()) for c in np.unique(labels)}


def confusion_matrix(predictions: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def write_predictions(path: Path, names: np.ndarray, labels: np.ndarray, logits: torch.Tensor) -> None:
    top = logits.topk(min(5, logits.shape[1]), dim=1).indices.numpy()
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "label", "prediction", "top5", "correct"])
        for name, label, ranked in zip(names, labels, top):
            writer.writerow([name, int(label), int(ranked[0]), " ".join(map(str, ranked)), int(ranked[0] == label)])


def plot_confusion(path: Path, matrix: np.ndarray, *, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = matrix.sum(axis=1, keepdims=True)
    normalised = np.divide(matrix, rows, out=np.zeros(matrix.shape, dtype=float), where=rows > 0)
    size = min(12.0, 3.0 + 0.08 * len(matrix))
    figure, axis = plt.subplots(figsize=(size + 1, size), dpi=120)
    image = axis.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    axis.set_xlabel("predicted class")
    axis.set_ylabel("true class")
    axis.set_title(title, fontsize=10)
    if len(matrix) <= 20:
        axis.set_xticks(range(len(matrix)))
        axis.set_yticks(range(len(matrix)))
    figure.colorbar(image, ax=axis, fraction=0.046, label="share of the true class")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def write_json(path: Path, document: dict) -> None:
    path.write_text(json.dumps(document, indent=2) + "\n")
