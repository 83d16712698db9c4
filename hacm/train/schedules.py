"""Per-step schedules computed once as arrays (as DINO does): linear warm-up, then cosine decay."""

from __future__ import annotations

import numpy as np


def warmup_cosine(*, base: float, final: float, epochs: int, steps_per_epoch: int, warmup_epochs: int = 0,
                  warmup_start: float = 0.0) -> np.ndarray:
    """One value per optimisation step: warm-up from `warmup_start` to `base`, cosine from `base` to `final`."""
    warmup_steps = warmup_epochs * steps_per_epoch
    total = epochs * steps_per_epoch
    warmup = np.linspace(warmup_start, base, warmup_steps, endpoint=False) if warmup_steps else np.zeros(0)
    progress = np.arange(total - warmup_steps) / max(total - warmup_steps, 1)
    cosine = final + 0.5 * (base - final) * (1 + np.cos(np.pi * progress))
    schedule = np.concatenate([warmup, cosine])
    assert len(schedule) == total
    return schedule
