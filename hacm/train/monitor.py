"""What a run reports: JSON-lines metrics, a loss-curve PNG, and a cheap kNN accuracy of the encoder."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import torch
import torch.nn.functional as F

from hacm.files import write_text_atomically


class MetricsLog:
    """Append-only JSON lines; on resume, lines past the checkpoint are dropped first (`keep_through_epoch`
    for runs checkpointed per epoch, `keep_before_step` for pretraining, checkpointed between any two steps:
    every record carries the global step it follows), and a line torn by a kill in the middle of a write
    (the only way a line can be incomplete) is dropped too. `export` copies the log whole to another file
    (pretraining keeps its log beside the checkpoint and exports the workflow's metrics.jsonl from it)."""

    def __init__(self, path: Path, *, keep_through_epoch: int | None = None, keep_before_step: int | None = None,
                 enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled
        if not enabled:
            return
        if keep_through_epoch is None and keep_before_step is None:
            self.path.write_text("")
        elif self.path.exists():
            if keep_before_step is not None:
                kept = [record for record in self.records() if record.get("step", -1) < keep_before_step]
            else:
                kept = [record for record in self.records() if record.get("epoch", 0) <= keep_through_epoch]
            self.path.write_text("".join(json.dumps(record) + "\n" for record in kept))

    def write(self, record: dict) -> None:
        if self.enabled:
            with open(self.path, "a") as handle:
                handle.write(json.dumps(record) + "\n")

    def records(self) -> list[dict]:
        if not self.path.exists():
            return []
        return read_records(self.path.read_text())

    def export(self, path: Path) -> None:
        """The whole log, as it stands, written atomically to `path`."""
        if self.enabled:
            write_text_atomically(Path(path), self.path.read_text() if self.path.exists() else "")


def read_records(text: str) -> list[dict]:
    """The JSON objects of a metrics log, without lines torn by an interrupted write."""
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def plot_loss_curve(records: Iterable[dict], path: Path, *, title: str) -> None:
    """Training losses per step and kNN accuracy per epoch, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = list(records)
    steps = [r for r in records if r.get("kind") == "step"]
    knn = [r for r in records if r.get("kind") == "epoch" and r.get("knn_top1") is not None]
    figure, loss_axis = plt.subplots(figsize=(7, 4), dpi=120)
    for key, style in (("loss", "-"), ("reconstruction", "--"), ("contrast", ":")):
        values = [(r["step"], r[key]) for r in steps if key in r]
        if values and any(v for _, v in values):
            loss_axis.plot(*zip(*values), style, label=key)
    loss_axis.set_xlabel("step")
    loss_axis.set_ylabel("loss")
    loss_axis.set_yscale("log")
    loss_axis.grid(alpha=0.3)
    handles, labels = loss_axis.get_legend_handles_labels()
    if knn:
        accuracy_axis = loss_axis.twinx()
        accuracy_axis.plot([r["step"] for r in knn], [100 * r["knn_top1"] for r in knn], "o-", color="tab:red",
                           label="kNN top-1 (%)")
        accuracy_axis.set_ylabel("kNN top-1 on the test split (%)")
        more_handles, more_labels = accuracy_axis.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    if handles:
        loss_axis.legend(handles, labels, loc="upper right", fontsize=8)
    loss_axis.set_title(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def knn_accuracy(train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor,
                 test_labels: torch.Tensor, *, k: int = 20, temperature: float = 0.07, chunk: int = 1024) -> float:
    """Weighted cosine kNN (as DINO's monitor): top-1 accuracy of the test features."""
    train = F.normalize(train_features.float(), dim=1)
    test = F.normalize(test_features.float(), dim=1)
    classes = int(max(train_labels.max(), test_labels.max())) + 1
    k = min(k, len(train))
    correct = 0
    for start in range(0, len(test), chunk):
        similarity = test[start : start + chunk] @ train.t()
        top, index = similarity.topk(k, dim=1)
        votes = torch.zeros(len(top), classes).scatter_add_(1, train_labels[index], (top / temperature).exp())
        correct += int((votes.argmax(dim=1) == test_labels[start : start + chunk]).sum())
    return correct / max(len(test), 1)
