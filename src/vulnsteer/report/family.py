"""The paired comparisons a run reports, as one table, and multiplicity: how many there are, and which of
the ones its verdict draws on survive a Holm correction. A run prints dozens of intervals; at the 5% level
about one in twenty excludes 0 by chance alone, so a claim resting on one of them says whether it survives
the correction."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Any

from vulnsteer.evaluation.deltas import minimal_detectable_effect
from vulnsteer.report.tables import (
    COMPARISON_METRICS,
    CONDITIONS,
    NA,
    POWER_PERCENT,
    TableData,
    fmt,
    fmt_ci,
    includes_zero,
    no_effect_sentence,
)

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


def comparisons_data(steer_summary: Mapping) -> TableData:
    """Every paired comparison the run reports (each condition minus the baseline, steered minus the random
    control) with its minimal detectable effect, what its interval rules out, and, for the comparisons the
    verdict draws on, whether it survives a Holm correction over them (`report.family`)."""
    deltas = steer_summary.get("deltas", {})
    compared = [(f"deltas/{c}", f"{CONDITIONS.get(c, c)} − baseline", d) for c, d in deltas.items()]
    if steer_summary.get("steered_minus_random") is not None:
        compared.append(("steered_minus_random", "steered − random-direction control (paired)",
                         steer_summary["steered_minus_random"]))
    if steer_summary.get("conditional_minus_random") is not None:
        compared.append(("conditional_minus_random", "conditional − random-direction control, same condition "
                         "(paired)", steer_summary["conditional_minus_random"]))
    family = holm(steer_summary)
    data = TableData("Paired comparisons and their minimal detectable effects",
                     ["comparison", "metric", "Δ [95% interval]", f"MDE ({POWER_PERCENT}% power)", "reading",
                      f"Holm, {len(family)} verdict comparisons"])
    data.note = ("MDE = (z(0.975) + z(0.8)) × SE, SE the standard deviation of the paired difference over the "
                 "scenario-group bootstrap (normal approximation): the smallest true change this design "
                 f"detects {POWER_PERCENT}% of the time at the two-sided 5% level with this many groups. It is a "
                 "property of the design; what the data rule out is the interval's far end. Holm: whether the "
                 "comparison still rejects at 5% after a Holm correction over the comparisons the verdict draws "
                 "on ('—': not one of them). The random-direction control pools all its draws, each paired with "
                 "its own file.")
    for key, name, d in compared:
        for metric, label in COMPARISON_METRICS.items():
            x = d.get(metric)
            mde = fmt(x[3]) if isinstance(x, Sequence) and not isinstance(x, str) and len(x) >= 4 else NA
            reading = NA if includes_zero(x) is None else no_effect_sentence(x).split("; this design")[0]
            holm_cell = "—" if (key, metric) not in family else "survives" if family[(key, metric)] else "does not"
            data.rows.append([name, label, fmt_ci(x), mde, reading, holm_cell])
    return data
