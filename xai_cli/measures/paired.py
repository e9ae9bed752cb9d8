"""Paired comparisons: does method A beat method B on the same inputs, beyond noise?

Two methods' AOPC means with their standard errors overlap on almost any real data set,
because inputs differ far more from each other than methods do. Each input is scored by
both methods, so the question is answered by the per-input differences: their mean, a
percentile bootstrap confidence interval of that mean (resampling inputs), and the share
of inputs on which A did better (ties count half). The bootstrap is seeded, so a run's
intervals are reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RESAMPLES = 10_000
LEVEL = 0.95
_CHUNK = 500   # resamples drawn at a time: memory is _CHUNK x inputs, not RESAMPLES x inputs


@dataclass(frozen=True)
class Paired:
    """The mean of ``a - b`` over inputs, its bootstrap CI, and the share of inputs won."""

    difference: float
    low: float
    high: float
    won: float
    count: int

    @property
    def beats(self) -> bool:
        """A ahead of B beyond noise: the whole interval above zero."""
        return self.low > 0


def compare(a: np.ndarray, b: np.ndarray, rng: np.random.Generator,
            resamples: int = RESAMPLES, level: float = LEVEL) -> Paired:
    """Paired comparison of per-input figures ``a`` and ``b`` (higher is better), the
    same inputs in the same order. Without inputs every figure is NaN; with one, the
    interval is (its bootstrap would claim a certainty that one input cannot give)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired figures need the same inputs: {a.shape} and {b.shape}")
    differences = a - b
    if not len(differences):
        return Paired(*(float("nan"),) * 4, 0)
    won = float(np.mean((differences > 0) + 0.5 * (differences == 0)))
    low, high = bootstrap_interval(differences, rng, resamples, level) if len(differences) > 1 \
        else (float("nan"), float("nan"))   # one input says nothing about the spread
    return Paired(float(differences.mean()), low, high, won, len(differences))


def bootstrap_interval(values: np.ndarray, rng: np.random.Generator,
                       resamples: int = RESAMPLES, level: float = LEVEL) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values``: the inputs are drawn with
    replacement ``resamples`` times, and the interval holds the middle ``level`` of the
    resampled means."""
    values = np.asarray(values, np.float64)
    means = np.concatenate([
        values[rng.integers(0, len(values), (min(_CHUNK, resamples - start), len(values)))]
        .mean(axis=1) for start in range(0, resamples, _CHUNK)])
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)
