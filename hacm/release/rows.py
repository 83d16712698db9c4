"""A row of the verifier's table: one quantity computed by the authors' code and by hacm, its difference
and its verdict, and the table itself.

Verdicts:
    equal       the difference is within the stated float32 tolerance (sets: identical)
    expected    a documented difference of hacm's corrected objective, and the check that explains it
                (a bound, a ratio, the rows that isolate it) holds; the label names it
    DIFFERS     anything else: the verifier exits 1
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

# float32 through a few transformer blocks: 1e-5 of the quantity's own magnitude (at least 1). Measured:
# ~4e-6 for encoder features up to ~3 at depth 2 (fidelity review 2, §1).
RELATIVE_TOLERANCE = 1e-5
TOLERANCE_NOTE = f"equal: max |release - hacm| <= {RELATIVE_TOLERANCE:g} x max(1, max |release|); kept sets identical"


def tolerance_of(reference: torch.Tensor | float) -> float:
    magnitude = reference.detach().abs().max().item() if isinstance(reference, torch.Tensor) else abs(reference)
    return RELATIVE_TOLERANCE * max(1.0, magnitude)


def max_difference(a: torch.Tensor | float, b: torch.Tensor | float) -> float:
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    if a.shape != b.shape:
        return math.inf
    return (a - b).abs().max().item() if a.numel() else 0.0


@dataclass(frozen=True)
class Row:
    method: str  # HA-CM, MAMP, MAE
    quantity: str
    difference: float  # max |difference| (for kept sets: the number of sequences whose sets differ)
    tolerance: float
    detail: str = ""
    expected: str | None = None  # what explains a difference above tolerance (the documented cause)
    explained: bool = False  # whether the check behind `expected` held

    @property
    def verdict(self) -> str:
        if self.difference <= self.tolerance:
            return "equal"
        if self.expected is not None and self.explained:
            return f"expected: {self.expected}"
        return "DIFFERS" + (f" (not explained: {self.expected})" if self.expected else "")

    @property
    def passed(self) -> bool:
        return not self.verdict.startswith("DIFFERS")


def compared(method: str, quantity: str, release, ours, *, detail: str = "", expected: str | None = None,
             explained: bool = False) -> Row:
    """A numeric row: max |release - ours| against the tolerance of the release's magnitude."""
    return Row(method, quantity, max_difference(release, ours), tolerance_of(release), detail, expected, explained)


def kept_sets(method: str, quantity: str, release_kept: torch.Tensor, ours_kept: torch.Tensor, *,
              expected: str | None = None, explained: bool = False) -> Row:
    """A row of kept sets, (S, L) booleans in one token order: the sequences whose sets differ, and their overlap."""
    if release_kept.shape != ours_kept.shape:
        return Row(method, quantity, math.inf, 0.0, f"shapes {tuple(release_kept.shape)} vs {tuple(ours_kept.shape)}")
    differing = int((release_kept != ours_kept).any(dim=1).sum())
    overlap = (release_kept & ours_kept).sum().item() / max(1, ours_kept.sum().item())
    counts = f"{int(release_kept[0].sum())} vs {int(ours_kept[0].sum())} kept"
    detail = f"{differing} of {len(ours_kept)} sequences differ; overlap {100 * overlap:.1f} %; {counts}"
    return Row(method, quantity, float(differing), 0.0, detail, expected, explained)


def _number(value: float) -> str:
    if math.isinf(value):
        return "inf"
    return "0" if value == 0 else f"{value:.2e}"


def table(rows: list[Row]) -> str:
    """The rows as a plain-text table (method, quantity, max |diff|, tolerance, verdict, detail), each expected
    difference's label as a numbered note below it."""
    labels: list[str] = []

    def verdict(row: Row) -> str:
        if row.difference <= row.tolerance or row.expected is None:
            return row.verdict
        if row.expected not in labels:
            labels.append(row.expected)
        note = f"[{labels.index(row.expected) + 1}]"
        return f"expected {note}" if row.passed else f"DIFFERS (not explained by {note})"

    header = ("method", "quantity", "max |diff|", "tolerance", "verdict", "detail")
    cells = [header] + [(r.method, r.quantity, _number(r.difference), _number(r.tolerance), verdict(r), r.detail)
                        for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header) - 1)]
    lines = ["  ".join(text.ljust(width) for text, width in zip(line[:-1], widths)) + "  " + line[-1]
             for line in cells]
    lines.insert(1, "  ".join("-" * width for width in widths) + "  " + "-" * len(header[-1]))
    lines += [f"[{index}] {label}" for index, label in enumerate(labels, start=1)]
    return "\n".join(line.rstrip() for line in lines)
