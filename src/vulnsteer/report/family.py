"""Multiplicity: how many paired comparisons a run reports, and which of the ones its verdict draws on
survive a Holm correction. A run prints dozens of intervals; at the 5% level about one in twenty excludes 0
by chance alone, so a claim resting on one of them says whether it survives the correction."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Any

from vulnsteer.evaluation.deltas import minimal_detectable_effect

ALPHA = 0.05
# The comparisons the verdict and "does steering carry the signal" sentences draw on: (where in
# steer/summary.json, metric). "deltas/<c>" is condition c minus the baseline.
VERDICT_FAMILY = (
    ("deltas/steered", "balanced_accuracy"), ("deltas/steered", "auroc"),
    ("steered_minus_random", "accuracy"), ("steered_minus_random", "balanced_accuracy"),
    ("steered_minus_random", "auroc"),
    ("deltas/conditional", "balanced_accuracy"), ("conditional_minus_random", "balanced_accuracy"),
    ("deltas/amplify", "balanced_accuracy"),
)
_Z_PER_SE = minimal_detectable_effect(1.0)  # MDE / SE (2.80 at 80% power, two-sided 5%)


def stored(summary: Mapping, key: str, metric: str) -> Any:
    """The stored [value, low, high, mde] of comparison `key` ("deltas/steered", "steered_minus_random")."""
    head, _, cond = key.partition("/")
    where = summary.get(head) or {}
    where = (where.get(cond) or {}) if cond else where
    return where.get(metric)


def p_value(x: Any) -> float | None:
    """Two-sided p of a stored delta [value, low, high, mde] from the normal approximation the MDE already
    makes: z = value / SE, SE = MDE / 2.80; None without a finite value and MDE."""
    if not (isinstance(x, Sequence) and not isinstance(x, str) and len(x) >= 4):
        return None
    try:
        value, mde = float(x[0]), float(x[3])
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(value) and math.isfinite(mde)):
        return None
    se = mde / _Z_PER_SE
    if se == 0:
        return 1.0 if value == 0 else 0.0
    return 2 * (1 - NormalDist().cdf(abs(value) / se))


def holm(summary: Mapping) -> dict[tuple[str, str], bool]:
    """For each comparison of `VERDICT_FAMILY` the run has: does it reject at `ALPHA` after Holm's step-down
    correction over that family?"""
    ps = {(k, m): p for k, m in VERDICT_FAMILY if (p := p_value(stored(summary, k, m))) is not None}
    out, m = {}, len(ps)
    still = True
    for i, (key, p) in enumerate(sorted(ps.items(), key=lambda kv: kv[1])):
        still = still and p <= ALPHA / (m - i)
        out[key] = still
    return out


def mark(summary: Mapping, key: str, metric: str) -> str:
    """' (survives Holm over K)' / ' (does not survive ...)' for a comparison in the family; '' otherwise."""
    family = holm(summary)
    if (key, metric) not in family:
        return ""
    if family[(key, metric)]:
        return f" (survives a Holm correction over the {len(family)} comparisons the verdict draws on)"
    return (f" (does not survive a Holm correction over the {len(family)} comparisons the verdict draws on: "
            "exploratory)")


def count_sentence(n_comparisons: int, summary: Mapping) -> str:
    """How many comparisons the run prints, and what that means for reading one that excludes 0."""
    family = holm(summary)
    survive = sum(family.values())
    return (f"This run reports {n_comparisons} paired comparisons; with no effect anywhere, about "
            f"{n_comparisons * ALPHA:.1f} of them would exclude 0 at the 5% level by chance. The verdict draws on "
            f"{len(family)} of them; {survive} survive a Holm correction over those {len(family)} (p from the "
            "normal approximation the MDE makes, Δ / SE with SE = MDE / 2.80). An interval that excludes 0 "
            "but does not survive is exploratory.")
