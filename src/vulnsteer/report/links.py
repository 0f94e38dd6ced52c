"""When steering does not beat its random-direction control, which link of the chain failed: the probe (do the
residuals hold the signal?), the condition (does conditional steering select the right files?), or the
vector's effect on the yes/no score (does the answer move at all as the strength grows?). On the planted
control (data/planted.py) the first link holds by construction, so a failure there points at the others."""

from __future__ import annotations

import math
from typing import Any

from vulnsteer.report.tables import fmt, fmt_ci, fmt_delta

PROBE_HOLDS = 0.9  # held-out probe AUROC from which the residuals count as holding the signal
SEPARATES = 0.5  # |share of vulnerable files selected - share of secure files selected| from which a condition separates
MOVES = 1.0  # change of the yes/no score (log-odds, nats) over the swept strengths from which the vector moves the answer


def _number(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def _median(values: list[float]) -> float:
    s = sorted(values)
    return (s[(len(s) - 1) // 2] + s[len(s) // 2]) / 2


def _probe(summary: dict) -> tuple[bool, str]:
    auroc = (summary.get("conditions", {}).get("probe") or {}).get("all", {}).get("auroc")
    point = _number(auroc[0]) if isinstance(auroc, list) and auroc else None
    holds = point is not None and point >= PROBE_HOLDS
    verdict = ("the residuals hold the signal" if holds else
               "the probe does not clearly find the signal, so steering has nothing certain to carry")
    return holds, (f"(a) the probe: held-out AUROC {fmt_ci(auroc)} ({'at or above' if holds else 'not at or above'} "
                   f"{PROBE_HOLDS}): {verdict}.")


def _condition(summary: dict) -> tuple[bool, str] | None:
    shares = summary.get("condition_selects")
    if not isinstance(shares, dict):
        return None
    vuln, safe = _number(shares.get("vulnerable")), _number(shares.get("secure"))
    gap = None if vuln is None or safe is None else abs(vuln - safe)
    d = summary.get("deltas", {}).get("conditional", {}).get("balanced_accuracy")
    # 7/24 against 19/24 is a gap of 0.5 that floating point makes 0.49999...: compare at the shown precision.
    separates = gap is not None and round(gap, 6) >= SEPARATES
    helps = isinstance(d, list) and len(d) > 1 and _number(d[1]) is not None and float(d[1]) > 0
    holds = separates or helps  # a condition whose steering helps on held-out files evidently picks the right ones
    verdict = ("the condition separates the labels" if separates else
               "the condition's gap is small, but conditional steering helps (interval above 0)" if helps else
               "the condition does not separate the labels")
    return holds, (f"(b) the condition: it selected {fmt(vuln)} of the held-out vulnerable files and {fmt(safe)} of "
                   f"the secure ones (gap {fmt(gap)}; it separates from {SEPARATES}): {verdict}; conditional minus "
                   f"unsteered balanced accuracy {fmt_delta(d)}.")


def _slopes(rows: list[dict], what: str) -> tuple[bool, str]:
    """One sentence on the folds' slopes (median over folds) and whether the answer moves in most folds."""
    slopes = [(r, _number(r.get("slope")), _number(r.get("span"))) for r in rows]
    ok = [(r, s, sp) for r, s, sp in slopes if s is not None and sp is not None]
    if not ok:
        return False, f"{what}: no slope (one strength swept, or no sweep recorded)."
    moving = sum(abs(sp) >= MOVES for _, _, sp in ok)
    holds = 2 * moving > len(ok)

    def med(key: str) -> str:
        vals = [v for r, _, _ in ok if (v := _number(r.get(key))) is not None]
        return f"{_median(vals):+.3g}" if vals else "n/a"

    lo, hi = min(float(r["alpha_min"]) for r, _, _ in ok), max(float(r["alpha_max"]) for r, _, _ in ok)
    return holds, (f"{what}: the yes/no score changes by {med('slope')} per unit of strength (median over {len(ok)} "
                   f"fold(s); vulnerable files {med('slope_vulnerable')}, secure {med('slope_secure')}), "
                   f"{med('span')} over the swept strengths {lo:g}..{hi:g}; it moves by at least {MOVES:g} in "
                   f"{moving} of {len(ok)} fold(s): "
                   + ("the vector moves the answer." if holds else "the vector barely moves the answer."))


def failed_links(summary: dict) -> list[str]:
    """Sentences naming which link failed when steered minus random (balanced accuracy, paired) does not lie
    above 0; empty when it does (steering carried the signal) or when there is no paired interval."""
    paired = (summary.get("steered_minus_random") or {}).get("balanced_accuracy")
    low = _number(paired[1]) if isinstance(paired, list) and len(paired) >= 3 else None
    if paired is None or (low is not None and low > 0):
        return []
    links = [("the probe", *_probe(summary))]
    condition = _condition(summary)
    if condition is not None:
        links.append(("the condition", *condition))
    rows = summary.get("strength_slopes")
    if isinstance(rows, list):
        chosen = [r for r in rows if isinstance(r, dict) and r.get("chosen")]
        links.append(("the vector's effect on the yes/no score",
                      *_slopes(chosen, "(c) the vector's effect at each fold's chosen configuration")))
        amplify = [r for r in rows if isinstance(r, dict) and r.get("operator") == "amplify" and not r.get("chosen")]
        if amplify:
            extra = _slopes(amplify, "Amplify at the same layer and method")[1]
            links[-1] = (links[-1][0], links[-1][1], f"{links[-1][2]} {extra}")
    else:
        links.append(("the vector's effect on the yes/no score", False,
                      "(c) the vector's effect: not recorded (steer/summary.json has no strength_slopes; rerun)."))
    out = [f"Steered minus random, balanced accuracy {fmt_delta(paired)}, does not lie above 0. Which link failed:",
           *(text for _, _, text in links)]
    failed = [name for name, holds, _ in links if not holds]
    if failed:
        return out + [f"First failing link: {failed[0]}" + (f" (also: {', '.join(failed[1:])})." if failed[1:] else ".")]
    return out + ["Every link measured here holds, yet the direction does not beat a random one: compare the "
                  "vulnerable and secure slopes above; a move of the same size on both shifts the yes/no bias "
                  "without separating the files."]
