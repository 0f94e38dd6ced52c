"""Paired comparisons of two conditions on the same samples, and means, with cluster-bootstrap intervals and
the minimal detectable effect (MDE) that says how large an effect the comparison could have seen.

A comparison whose interval includes 0 is not evidence of no effect. What the data rule out is the interval's
far end; the MDE is a property of the design (what it would detect 80% of the time), not of the data:
`evaluation.readings.null_reading` says both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from vulnsteer.errors import DataError
from vulnsteer.evaluation.metrics import METRICS, MetricWithCI, metric_draws, percentile_interval
from vulnsteer.evaluation.predictions import Predictions
from vulnsteer.evaluation.readings import POWER


@dataclass(frozen=True)
class DeltaWithCI:
    """metric(new) - metric(base): the point difference, its percentile bootstrap interval, the bootstrap
    standard error of the difference and the minimal detectable effect at `POWER` (NaN where undefined)."""

    value: float
    low: float
    high: float
    se: float
    mde: float

    def stored(self) -> list[float]:
        """As the run folder stores it: [value, low, high, mde] (readers of [value, low, high] still work)."""
        return [self.value, self.low, self.high, self.mde]


def minimal_detectable_effect(se: float, alpha: float = 0.05, power: float = POWER) -> float:
    """The smallest true difference a two-sided test at level `alpha` detects with probability `power`:

        MDE = (z_{1 - alpha/2} + z_{power}) * SE        (2.80 * SE for alpha 0.05, power 0.8)

    SE is the standard deviation of the paired difference over the bootstrap resamples of whole groups, so
    it reflects how many groups the comparison has (and how alike a group's files are). Assumes the
    difference is approximately normal with a standard error that does not depend on the true effect; with
    few groups, or a metric near its bound (accuracy 1.0), the normal approximation is rough.
    """
    z = NormalDist()
    return float((z.inv_cdf(1 - alpha / 2) + z.inv_cdf(power)) * se)


def _delta(draws: np.ndarray, alpha: float) -> DeltaWithCI:
    """A delta from its draws: entry 0 on all samples, the rest on group resamples."""
    boot = draws[1:]
    finite = boot[np.isfinite(boot)]
    se = float(np.std(finite, ddof=1)) if len(finite) > 1 else float("nan")
    point = float(draws[0])
    return DeltaWithCI(point, *percentile_interval(boot, alpha, point), se, minimal_detectable_effect(se, alpha))


def paired_delta_ci(
    labels: Sequence[int],
    base_scores: Sequence[float],
    base_verdicts: Sequence[str],
    new_scores: Sequence[float],
    new_verdicts: Sequence[str],
    pair_ids: Sequence[str | None] | None,
    groups: Sequence[str],
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, DeltaWithCI]:
    """metric(new) - metric(base) on the same samples (e.g. steered minus baseline), with an interval and an
    MDE of the difference: both conditions are evaluated on the same group resample, so shared noise cancels."""
    base = metric_draws(labels, base_scores, base_verdicts, pair_ids, groups, n_boot, seed)
    new = metric_draws(labels, new_scores, new_verdicts, pair_ids, groups, n_boot, seed)
    return {k: _delta(new[k] - base[k], alpha) for k in METRICS if k != "n"}


def delta_ci(
    base: Predictions, new: Predictions, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05
) -> dict[str, DeltaWithCI]:
    """`paired_delta_ci` of two conditions on the same samples."""
    return paired_delta_ci(base.labels, base.scores, base.verdicts, new.scores, new.verdicts, base.pair_ids,
                           base.groups, n_boot=n_boot, seed=seed, alpha=alpha)


def mean_ci(
    values: Sequence[float], groups: Sequence[str], n_boot: int = 1000, seed: int = 0, alpha: float = 0.05
) -> MetricWithCI:
    """The mean of per-sample `values` (a flip indicator, a file's NLL) with a percentile interval from a
    bootstrap over whole groups, as every other interval in a run; NaN values are left out."""
    v = np.asarray(values, dtype=float)
    g = np.asarray(list(groups), dtype=str)
    if v.shape != g.shape:
        raise DataError(f"mean_ci: {len(g)} groups for {len(v)} values; pass one group per value")
    keep = np.isfinite(v)
    v, g = v[keep], g[keep]
    if len(v) == 0:
        return MetricWithCI(float("nan"), float("nan"), float("nan"))
    _, codes = np.unique(g, return_inverse=True)
    n_groups = int(codes.max()) + 1
    counts = np.random.default_rng(seed).multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=n_boot)
    w = counts[:, codes].astype(float)
    boot = (w @ v) / w.sum(axis=1)
    return MetricWithCI(float(v.mean()), *percentile_interval(boot, alpha, float(v.mean())))
