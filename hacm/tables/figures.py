"""The report figure: pretraining loss per epoch (left) and our accuracies as grouped bars (right).

Pretraining logs are hacm.pretrain's metrics.jsonl, read by hacm.tables.logs; each epoch record must
carry a numeric "loss".
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from hacm.cli import one_line
from hacm.tables import ReportError
from hacm.tables.logs import epoch_records


def read_epoch_losses(path: Path) -> tuple[list[int], list[float]]:
    """(epochs, losses) of the epoch records of one metrics.jsonl, in epoch order."""
    epochs, losses = [], []
    for number, record in epoch_records(path):
        loss = record.get("loss")
        if isinstance(loss, bool) or not isinstance(loss, (int, float)):
            raise ReportError(f"{path}:{number}: epoch record without a numeric 'loss'")
        epochs.append(record["epoch"])
        losses.append(float(loss))
    return epochs, losses


def plot_pretraining(out: Path, curves, bars) -> None:
    """Write the PNG. `curves`: CurveSpec items; `bars`: a tables.Table (its rows of ours) or None."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(14, 5.2), dpi=110)

    plotted = 0
    for curve in curves:
        epochs, losses = read_epoch_losses(curve.log)
        if not epochs:
            left.plot([], [], label=f"{curve.label} (no epoch logged yet)")
            continue
        left.plot(epochs, losses, marker="o" if len(epochs) <= 30 else None, markersize=3, linewidth=1.5,
                  label=curve.label)
        plotted += 1
    left.set_title("Pretraining loss per epoch", fontsize=11)
    left.set_xlabel("epoch")
    left.set_ylabel("training loss")
    left.grid(alpha=0.3)
    if curves:
        left.legend(fontsize=8, loc="best")
        if plotted:
            left.xaxis.get_major_locator().set_params(integer=True)
    else:
        left.text(0.5, 0.5, "no pretraining logs in the plan", ha="center", va="center", transform=left.transAxes)

    ours = [] if bars is None else list(bars.our_rows)
    if bars is None:
        right.text(0.5, 0.5, "no accuracy_figure in the plan", ha="center", va="center", transform=right.transAxes)
        right.set_axis_off()
    elif not ours:
        right.text(0.5, 0.5, f"table {bars.name!r} has no rows of ours", ha="center", va="center",
                   transform=right.transAxes)
        right.set_axis_off()
    else:
        columns = bars.columns
        x = np.arange(len(columns))
        width = 0.8 / len(ours)
        top = 0.0
        for index, row in enumerate(ours):
            cells = [row.cells[column.key] for column in columns]
            means = np.array([math.nan if cell.mean is None else cell.mean for cell in cells])
            # No error bar (NaN) where a cell has a single run or none.
            errors = np.array([math.nan if cell.std is None else cell.std for cell in cells])
            offsets = x - 0.4 + width * (index + 0.5)
            right.bar(offsets, np.nan_to_num(means), width=width * 0.95, yerr=errors, capsize=3,
                      label=row.label, alpha=0.9, error_kw={"linewidth": 1})
            for position, mean, error in zip(offsets, means, np.nan_to_num(errors)):
                if math.isnan(mean):
                    right.text(position, 1, "not run", rotation=90, ha="center", va="bottom", fontsize=7, color="0.4")
                else:
                    right.text(position, mean + error + 0.8, f"{mean:.1f}", ha="center", va="bottom", fontsize=7)
                    top = max(top, mean + error)
        right.set_xticks(x)
        right.set_xticklabels([column.label for column in columns], rotation=20, ha="right", fontsize=9)
        right.set_ylabel(f"{bars.metric}, {bars.statistic} epoch (%)")
        right.set_ylim(0, min(100.0, max(10.0, top * 1.15 + 3)))
        right.set_title(f"{bars.title} — ours; error bars: sample std over runs", fontsize=10)
        right.grid(axis="y", alpha=0.3)
        right.legend(fontsize=8, loc="upper left")

    figure.tight_layout()
    try:
        figure.savefig(out)
    except OSError as error:
        raise ReportError(f"{out}: cannot write the figure: {one_line(error)}") from None
    finally:
        plt.close(figure)
