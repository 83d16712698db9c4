"""Pretraining logs (hacm.pretrain's metrics.jsonl): their epoch records and the masking agreement they carry.

One JSON object per line; records with "kind": "epoch" carry an integer "epoch" (and "loss", maybe
"knn_top1" and, at monitored epochs, "masking_agreement": {group: share}); other kinds are ignored.
When a resumed run logged an epoch twice, its last record counts.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from hacm.cli import one_line
from hacm.tables import ReportError

# The masking groups a pretraining log names: cross masking has two, single-group masking one.
MASKING_GROUPS = ("temporal", "spatial", "all")


def epoch_records(path: Path) -> list[tuple[int, dict]]:
    """(line number, record) of the epoch records of one metrics.jsonl, one per epoch, in epoch order."""
    by_epoch: dict[int, tuple[int, dict]] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ReportError(f"{path}: cannot be read: {one_line(error)}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ReportError(f"{path}:{number}: not a JSON line ({error.msg})") from None
        if not isinstance(record, dict):
            raise ReportError(f"{path}:{number}: not a JSON object")
        if record.get("kind") != "epoch":
            continue
        epoch = record.get("epoch")
        if isinstance(epoch, bool) or not isinstance(epoch, int):
            raise ReportError(f"{path}:{number}: epoch record without an integer 'epoch'")
        by_epoch[epoch] = (number, record)
    return [by_epoch[epoch] for epoch in sorted(by_epoch)]


def _share(value: object) -> bool:
    return (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
            and 0 <= value <= 1)


def last_masking_agreement(path: Path) -> dict[str, float]:
    """Per masking group, the agreement of the last epoch record giving one ({} when no record does).

    The agreement is the share of kept tokens that random masking with the same noise would also keep:
    1.0 means the masking criterion changed nothing."""
    agreement: dict[str, float] = {}
    for number, record in epoch_records(path):
        shares = record.get("masking_agreement")
        if shares is None:
            continue
        if not isinstance(shares, dict) or not shares:
            raise ReportError(f"{path}:{number}: masking_agreement must be an object of group: share")
        for group, share in shares.items():
            if group not in MASKING_GROUPS:
                raise ReportError(f"{path}:{number}: masking_agreement: unknown group {group!r} "
                                  f"(known: {', '.join(MASKING_GROUPS)})")
            if not _share(share):
                raise ReportError(f"{path}:{number}: masking_agreement[{group!r}] must be a share in 0..1, "
                                  f"got {share!r}")
            agreement[group] = float(share)
    return agreement
