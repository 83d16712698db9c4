"""Bootstrap over test samples: percentile intervals of mean per-sample values, paired by construction.

Every call resamples with the same fixed seed, so rows of equal length (one test set) are resampled at
the same indices: an interval of a difference of two rows' resampled means is a paired bootstrap, and
the tables come out the same bit for bit on every run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RESAMPLES = 2000
CONFIDENCE = 0.95
SEED = 20240607
# Indices drawn per chunk of resamples: bounds the memory for test sets of tens of thousands of samples. It
# depends on the test set only, so that a row's draws do not depend on the other rows.
_CHUNK_INDICES = 1 << 20


@dataclass(frozen=True)
class Interval:
    estimate: float                  # the statistic on the test set itself
    low: float
    high: float
    samples: int                     # test samples resampled
    resamples: int

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def resampled_means(values: np.ndarray, *, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """(k, n) per-sample values -> (k, resamples): each row's mean over resamples of its n samples drawn with
    replacement, the same draws for every row."""
    values = np.asarray(values, dtype=float)
    samples = values.shape[1]
    generator = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_INDICES // samples)
    means = np.empty((len(values), resamples))
    for start in range(0, resamples, chunk):
        stop = min(start + chunk, resamples)
        indices = generator.integers(0, samples, size=(stop - start, samples))
        # Row by row: a row's means then do not depend on how many rows share the call, to the last bit.
        for row, row_values in enumerate(values):
            means[row, start:stop] = row_values[indices].mean(axis=1)
    return means


def percentile_interval(estimate: float, resampled: np.ndarray, samples: int) -> Interval:
    """The CONFIDENCE percentile interval of one statistic's resampled values."""
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(resampled, [tail, 100 - tail])
    return Interval(estimate=float(estimate), low=float(low), high=float(high), samples=samples,
                    resamples=len(resampled))
