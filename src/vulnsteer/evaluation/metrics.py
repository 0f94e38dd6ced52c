"""Detection metrics with cluster-bootstrap confidence intervals.

Every metric is written as a weighted mean so one vectorised pass evaluates all bootstrap resamples at once:
a resample of whole scenario groups is a matrix of per-sample weights (how often each sample's group was
drawn), and the point estimate is the all-ones row. Resampling groups, not files, keeps a vulnerable file and
its patched twin together and gives intervals that respect the correlation within a scenario.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from scipy.integrate import trapezoid

from vulnsteer.errors import DataError

METRICS = (
    "n",
    "accuracy",
    "tpr",
    "tnr",
    "balanced_accuracy",
    "f1",
    "auroc",
    "pairs_both_right",
    "pair_ranking",
    "unknown_rate",
    "yes_rate",
)
VERDICTS = ("yes", "no", "unknown")


@dataclass(frozen=True)
class MetricWithCI:
    """A point estimate and its percentile bootstrap interval (NaN where undefined)."""

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class _Data:
    """Validated inputs as arrays; pairs as (vulnerable index, secure index) of complete pairs."""

    y: np.ndarray  # [n] bool, True = vulnerable
    s: np.ndarray  # [n] float
    yes: np.ndarray  # [n] bool
    unknown: np.ndarray  # [n] bool
    correct: np.ndarray  # [n] bool
    pairs: np.ndarray  # [p, 2] int


def _prepare(
    labels: Sequence[int], scores: Sequence[float], verdicts: Sequence[str], pair_ids: Sequence[str | None] | None
) -> _Data:
    y = np.asarray(labels)
    n = len(y)
    if n == 0:
        raise DataError("no samples to score; check the dataset filter")
    if not np.isin(y, (0, 1)).all():
        raise DataError(f"labels must be 1 (vulnerable) or 0 (secure), got {sorted(set(y.tolist()))[:5]}")
    s = np.asarray(scores, dtype=float)
    v = np.asarray(list(verdicts), dtype=object)
    if s.shape != (n,) or v.shape != (n,):
        raise DataError(f"labels, scores and verdicts must have equal lengths, got {n}, {s.shape}, {v.shape}")
    bad = set(v.tolist()) - set(VERDICTS)
    if bad:
        raise DataError(f"verdicts must be 'yes', 'no' or 'unknown', got {sorted(map(str, bad))[:5]}")
    y = y == 1
    yes, unknown = v == "yes", v == "unknown"
    correct = np.where(y, yes, v == "no")
    return _Data(y, s, yes, unknown, correct, _complete_pairs(y, pair_ids, n))


def _complete_pairs(y: np.ndarray, pair_ids: Sequence[str | None] | None, n: int) -> np.ndarray:
    if pair_ids is None:
        return np.zeros((0, 2), dtype=int)
    if len(pair_ids) != n:
        raise DataError(f"pair_ids has {len(pair_ids)} entries for {n} samples; pass one (or None) per sample")
    members: dict[str, list[int]] = {}
    for i, pid in enumerate(pair_ids):
        if pid is not None:
            members.setdefault(pid, []).append(i)
    pairs = []
    for pid, idx in members.items():
        if len(idx) > 2 or (len(idx) == 2 and y[idx[0]] == y[idx[1]]):
            raise DataError(
                f"pair_id {pid!r} has labels {y[idx].astype(int).tolist()}; "
                "a pair is one vulnerable and one secure record"
            )
        if len(idx) == 2:  # a lone member (its twin filtered out) is an incomplete pair and is skipped
            pairs.append(idx if y[idx[0]] else idx[::-1])
    return np.asarray(pairs, dtype=int).reshape(-1, 2)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _weighted_auroc(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUROC (ties 1/2) per row of weights `w` [B, n]; equals sklearn's roc_auc_score(sample_weight)."""
    if np.isnan(s).any():
        return np.full(w.shape[0], np.nan)
    order = np.argsort(s, kind="stable")
    s_sorted = s[order]
    starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])  # first index of each tied block
    wpos = np.add.reduceat(w[:, order] * y[order], starts, axis=1)  # [B, U] weight of positives per score value
    wneg = np.add.reduceat(w[:, order] * ~y[order], starts, axis=1)
    below = np.cumsum(wneg, axis=1) - wneg  # negative weight strictly below each score value
    num = np.sum(wpos * (below + 0.5 * wneg), axis=1)
    return _ratio(num, wpos.sum(axis=1) * wneg.sum(axis=1))


def _batched(d: _Data, w: np.ndarray, wpair: np.ndarray) -> dict[str, np.ndarray]:
    """All metrics for each row of sample weights `w` [B, n] and pair weights `wpair` [B, p]."""
    y = d.y
    tp = w @ (y & d.yes)
    fp = w @ (~y & d.yes)
    pos, neg = w @ y, w @ ~y
    total = pos + neg
    tpr, tnr = _ratio(tp, pos), _ratio(w @ (~y & d.correct), neg)
    if len(d.pairs):
        v, p = d.pairs[:, 0], d.pairs[:, 1]
        both = (d.correct[v] & d.correct[p]).astype(float)
        rank = np.where(d.s[v] > d.s[p], 1.0, np.where(d.s[v] == d.s[p], 0.5, 0.0))
        pw = wpair.sum(axis=1)
        pairs_both = _ratio(wpair @ both, pw)
        pair_rank = np.full(len(w), np.nan) if np.isnan(d.s[d.pairs]).any() else _ratio(wpair @ rank, pw)
    else:
        pairs_both = pair_rank = np.full(len(w), np.nan)
    return {
        "n": total,
        "accuracy": _ratio(w @ d.correct, total),
        "tpr": tpr,
        "tnr": tnr,
        "balanced_accuracy": (tpr + tnr) / 2,
        # 'unknown' on a vulnerable file is a miss (FN); on a secure file it is no false alarm.
        "f1": _ratio(2 * tp, 2 * tp + fp + (pos - tp)),
        "auroc": _weighted_auroc(y, d.s, w),
        "pairs_both_right": pairs_both,
        "pair_ranking": pair_rank,
        "unknown_rate": _ratio(w @ d.unknown, total),
        "yes_rate": _ratio(w @ d.yes, total),
    }


def auroc(y: Sequence[int] | np.ndarray, s: Sequence[float] | np.ndarray) -> float:
    """AUROC of scores `s` for labels `y`; NaN when only one class is present (rather than an exception)."""
    y, s = np.asarray(y), np.asarray(s, dtype=float)
    return _roc_auc(y, s) if 0 < y.sum() < len(y) else float("nan")


def _roc_auc(y: np.ndarray, s: np.ndarray) -> float:
    """scikit-learn's `roc_auc_score(y, s)` for 0/1 labels and finite scores, bit for bit (its ROC curve with
    intermediate points dropped, then scipy's trapezoid, as scikit-learn 1.9 computes them; tests/test_metrics.py
    compares the two exactly on thousands of tied and untied inputs). Why: the search and the conditional
    choice compute it for every configuration and candidate, thousands of times a cell on 12-48 scores, where
    `roc_auc_score`'s input checks cost about 1.5 ms a call against 0.06 ms here; a rank-based AUROC would be
    as fast but differs in the last bit, which can reorder tied configurations."""
    order = np.argsort(-s, kind="stable")  # descending; the order within tied scores does not change the curve
    ends = np.r_[np.nonzero(np.diff(s[order]))[0], len(s) - 1]  # the last index of each distinct score
    tps = np.cumsum((y[order] == 1).astype(np.float64), dtype=np.float64)[ends]
    fps = 1 + ends.astype(np.float64) - tps
    if len(fps) > 2:  # drop points collinear with their neighbours, as roc_curve(drop_intermediate=True) does
        corner = np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True]
        fps, tps = fps[corner], tps[corner]
    tps, fps = np.r_[0.0, tps], np.r_[0.0, fps]
    return float(trapezoid(tps / tps[-1], fps / fps[-1]))


def detection_metrics(
    labels: Sequence[int],
    scores: Sequence[float],
    verdicts: Sequence[str],
    pair_ids: Sequence[str | None] | None = None,
) -> dict[str, float]:
    """Point estimates of every metric in `METRICS` (vulnerable = positive; 'unknown' verdicts count wrong).

    auroc is NaN when only one class is present or any score is NaN; pair metrics use complete pairs only
    and are NaN when there are none; pair_ranking counts ties as 1/2.
    """
    d = _prepare(labels, scores, verdicts, pair_ids)
    out = {k: float(v[0]) for k, v in _batched(d, np.ones((1, len(d.y))), np.ones((1, len(d.pairs)))).items()}
    if not np.isnan(d.s).any() and 0 < d.y.sum() < len(d.y):
        out["auroc"] = _roc_auc(d.y, d.s)
    return out


def _group_weights(groups: Sequence[str], n: int, n_boot: int, seed: int) -> np.ndarray:
    """[n_boot, n] weights: how many times each sample's group was drawn in each resample of groups."""
    g = np.asarray(list(groups), dtype=str)
    if g.shape != (n,):
        raise DataError(f"groups has {g.shape[0] if g.ndim else 0} entries for {n} samples; pass one per sample")
    _, codes = np.unique(g, return_inverse=True)
    n_groups = int(codes.max()) + 1
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=n_boot)  # [B, G]
    return counts[:, codes].astype(float)


def _pair_weights(d: _Data, w: np.ndarray, groups: Sequence[str]) -> np.ndarray:
    g = np.asarray(list(groups), dtype=str)
    split = d.pairs[g[d.pairs[:, 0]] != g[d.pairs[:, 1]]] if len(d.pairs) else d.pairs
    if len(split):
        i, j = split[0]
        raise DataError(
            f"paired records {i} and {j} are in different groups ({g[i]!r}, {g[j]!r}); a pair must share its group"
        )
    return w[:, d.pairs[:, 0]] if len(d.pairs) else np.zeros((len(w), 0))


MIN_GROUPS = 5  # fewer scenario groups than this: no interval (3 groups give "0.33 [0.00, 0.33]")


def percentile_interval(samples: np.ndarray, alpha: float, point: float | None = None) -> tuple[float, float]:
    """The (1 - alpha) percentile interval of the finite entries of `samples` (NaN, NaN when none is).

    Given the `point` estimate, an interval with the point at or beyond one end (a skewed or lumpy bootstrap:
    "0.61 [0.61, 0.78]") is replaced by the bias-corrected (BC) percentile interval, whose quantiles are
    Phi(2 z0 -+ z) with z0 = Phi^-1(share of resamples below the point, ties counted half)."""
    finite = samples[np.isfinite(samples)]
    if len(finite) == 0:
        return (float("nan"), float("nan"))
    lo, hi = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
    if point is not None and np.isfinite(point) and lo < hi and not lo < point < hi:
        below = (np.sum(finite < point) + 0.5 * np.sum(finite == point)) / len(finite)
        nd = NormalDist()
        z0, z = nd.inv_cdf(min(max(below, 0.5 / len(finite)), 1 - 0.5 / len(finite))), nd.inv_cdf(1 - alpha / 2)
        lo, hi = np.quantile(finite, [nd.cdf(2 * z0 - z), nd.cdf(2 * z0 + z)])
    return (float(lo), float(hi))


def bootstrap_ci(
    labels: Sequence[int],
    scores: Sequence[float],
    verdicts: Sequence[str],
    pair_ids: Sequence[str | None] | None,
    groups: Sequence[str],
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, tuple[float, float]]:
    """Percentile (1 - alpha) intervals for every metric from a bootstrap over whole groups (bias-corrected
    where the point sits at an end, `percentile_interval`); NaN for every metric under `MIN_GROUPS` groups.

    Resamples where a metric is undefined (e.g. no vulnerable file drawn, so no tpr) are left out of that
    metric's interval.
    """
    draws = metric_draws(labels, scores, verdicts, pair_ids, groups, n_boot, seed)
    if len(set(groups)) < MIN_GROUPS:
        return {k: (float("nan"), float("nan")) for k in draws}
    return {k: percentile_interval(v[1:], alpha, float(v[0])) for k, v in draws.items()}


def metrics_with_ci(
    labels: Sequence[int],
    scores: Sequence[float],
    verdicts: Sequence[str],
    pair_ids: Sequence[str | None] | None,
    groups: Sequence[str],
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, MetricWithCI]:
    """`detection_metrics` and `bootstrap_ci` together."""
    point = detection_metrics(labels, scores, verdicts, pair_ids)
    ci = bootstrap_ci(labels, scores, verdicts, pair_ids, groups, n_boot, seed, alpha)
    return {k: MetricWithCI(point[k], *ci[k]) for k in METRICS}


def metric_draws(
    labels: Sequence[int],
    scores: Sequence[float],
    verdicts: Sequence[str],
    pair_ids: Sequence[str | None] | None,
    groups: Sequence[str],
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Every metric on all samples (entry 0) and on each of `n_boot` resamples of whole groups (entries 1..).

    The resamples depend only on `groups`, `n_boot` and `seed`, so two conditions on the same samples drawn
    with the same seed are evaluated on the same resamples: their difference per entry is a paired draw."""
    d = _prepare(labels, scores, verdicts, pair_ids)
    n = len(d.y)
    w = np.vstack([np.ones((1, n)), _group_weights(groups, n, n_boot, seed)])
    return _batched(d, w, _pair_weights(d, w, groups))
