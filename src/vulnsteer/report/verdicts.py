"""The report's plain-language judgments: does steering clear its random-direction control, what a null
comparison rules out (its minimal detectable effect), and what the probe curve supports."""

from __future__ import annotations

import math
from typing import Any

from vulnsteer.report.tables import fmt_ci, includes_zero, no_effect_sentence


def _interval(x: Any) -> tuple[float, float, float] | None:
    if not isinstance(x, list) or len(x) < 3 or any(v is None or math.isnan(float(v)) for v in x[:3]):
        return None
    return float(x[0]), float(x[1]), float(x[2])


def versus_random(summary: dict) -> list[str]:
    """Plain sentences: does the steered delta's interval clear the random-direction control's?"""
    deltas = summary.get("deltas", {})
    paired = summary.get("steered_minus_random")
    out = []
    for metric, name in (("accuracy", "accuracy"), ("auroc", "AUROC")):
        if paired is not None and _interval(paired.get(metric)) is not None:
            lo, hi = _interval(paired[metric])[1:]  # type: ignore[index]
            where = ("lies above 0: the chosen direction beats a random one" if lo > 0 else
                     "lies below 0: a random direction does better" if hi < 0 else
                     "includes 0: not distinguishable from a random direction at this sample size")
            bound = f"; {no_effect_sentence(paired[metric])}" if includes_zero(paired[metric]) else ""
            out.append(f"steered minus random-direction control, {name} (paired): {fmt_ci(paired[metric])}; "
                       f"the interval {where}{bound}.")
            continue
        s_raw, r_raw = deltas.get("steered", {}).get(metric), deltas.get("random", {}).get(metric)
        s, r = _interval(s_raw), _interval(r_raw)
        if s is None or r is None:
            out.append(f"Δ {name}: steered vs random control cannot be compared (an interval is n/a).")
            continue
        versus = f"steered Δ {name} {fmt_ci(s_raw)} vs random-direction Δ {fmt_ci(r_raw)}"
        if s[1] > r[2]:
            verdict = "the steered interval lies entirely above the control's: steering beats the random direction"
        elif s[2] < r[1]:
            verdict = "the steered interval lies entirely below the control's: steering does worse than a random direction"
        else:
            verdict = "the intervals overlap: not distinguishable from a random direction at this sample size"
        zero = "excludes 0" if s[1] > 0 or s[2] < 0 else f"includes 0: {no_effect_sentence(s_raw)} vs baseline"
        out.append(f"{versus}; {verdict} (the steered interval {zero}).")
    return out



def probe_conclusion(curve: dict) -> str:
    """What the probe curve supports, judged against the shuffled-label control over ALL layers: picking the
    best of many layers inflates the probe's peak, and the control's own peak shows by how much."""
    try:
        layers, auroc = list(curve["layers"]), [float("nan") if v is None else float(v) for v in curve["auroc"]]
        ctrl_max = [float("nan") if v is None else float(v) for v in curve["control_auroc_max"]]
        ctrl_mean = [float("nan") if v is None else float(v) for v in curve["control_auroc_mean"]]
    except (KeyError, TypeError, ValueError):
        return "The probe curve is incomplete; no conclusion drawn."
    finite = [i for i, v in enumerate(auroc) if v == v]
    if not finite:
        return "The probe AUROC is undefined at every layer (one class only?); no conclusion drawn."
    i = max(finite, key=lambda k: auroc[k])
    peak_ctrl = max((v for v in ctrl_max if v == v), default=float("nan"))
    at = f"at layer {layers[i]}" if i < len(layers) else ""
    head = (f"Best layer probe AUROC {auroc[i]:.3f} {at}; the shuffled-label control averages "
            f"{ctrl_mean[i]:.3f} there and reaches {peak_ctrl:.3f} at its best layer over all layers.")
    if peak_ctrl == peak_ctrl and auroc[i] > peak_ctrl:
        return head + (" The probe's peak is above everything the label-shuffled probes reached: a linear signal "
                       "about the label is present in the residuals (a peak chosen over layers, so read its size "
                       "against the control's peak, not against 0.5).")
    return head + (" The shuffled-label control reaches as high as the probe: at this sample size the probe signal "
                   "is not clearly above chance.")
