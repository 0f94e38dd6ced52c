"""The report's plain-language judgments: does steering clear its random-direction control, what a null
comparison rules out (its minimal detectable effect), and what the probe curve supports."""

from __future__ import annotations

import math
from typing import Any

from vulnsteer.report.family import mark
from vulnsteer.report.tables import fmt_ci, fmt_delta, includes_zero, no_effect_sentence


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
            bound = (f"; {no_effect_sentence(paired[metric])}" if includes_zero(paired[metric]) else
                     mark(summary, "steered_minus_random", metric))
            out.append(f"steered minus random-direction control (all draws pooled), {name} (paired): "
                       f"{fmt_ci(paired[metric])}; the interval {where}{bound}.")
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
        zero = "excludes 0" if s[1] > 0 or s[2] < 0 else f"includes 0 vs baseline: {no_effect_sentence(s_raw)}"
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


CARRY_QUESTION = "Does steering carry the probe's signal into the model's own answer, and its generated explanation?"


def _lower(x: Any) -> float | None:
    i = _interval(x)
    return None if i is None else i[1]


def carries_signal(summary: dict, generations: list[dict] | None) -> list[str]:
    """The answer to `CARRY_QUESTION` in sentences drawn from the held-out numbers: the probe's own reading
    beside the model's answer unsteered, conditionally steered (and against a random direction under the same
    condition) and amplified; then what the conditionally steered generations did."""
    conds, deltas = summary.get("conditions", {}), summary.get("deltas", {})
    if "conditional" not in conds and "amplify" not in conds:
        return [f"{CARRY_QUESTION} Not measured: this run has neither conditional steering nor the amplify operator."]

    def bacc(name: str) -> str:
        return fmt_ci((conds.get(name) or {}).get("all", {}).get("balanced_accuracy"))

    out = [f"{CARRY_QUESTION} Held-out balanced accuracy: the probe alone {bacc('probe')}; the model's answer "
           f"unsteered {bacc('baseline')}"
           + "".join(f", {label} {bacc(name)}" for name, label in (("conditional", "conditionally steered"),
                                                                   ("amplify", "amplified")) if name in conds) + "."]
    answer = []
    if "conditional" in conds:
        d, vs = deltas.get("conditional", {}).get("balanced_accuracy"), summary.get("conditional_minus_random") or {}
        r = vs.get("balanced_accuracy")
        text = (f"Conditional minus unsteered {fmt_delta(d)}; conditional minus a random direction steered on the "
                f"same files {fmt_delta(r)}.")
        lo_d, lo_r = _lower(d), _lower(r)
        marks = (mark(summary, "deltas/conditional", "balanced_accuracy")
                 + mark(summary, "conditional_minus_random", "balanced_accuracy"))
        if lo_d is not None and lo_d > 0 and lo_r is not None and lo_r > 0:
            answer.append("conditional steering carries the probe's signal into the answer: it beats both the "
                          f"unsteered answer and a random direction on the files the condition selected{marks}")
        elif lo_d is not None and lo_d > 0:
            answer.append("conditional steering improves the answer, but no more than a random direction on the "
                          "same files: the gain comes from which files the condition picked, not from the "
                          f"direction{mark(summary, 'deltas/conditional', 'balanced_accuracy')}")
        else:
            bound = f" (conditional minus unsteered: {no_effect_sentence(d)})" if includes_zero(d) else ""
            answer.append(f"conditional steering is not shown to carry the probe's signal into the answer{bound}")
        out.append(text + _recovered(conds, "conditional"))
    if "amplify" in conds:
        d = deltas.get("amplify", {}).get("balanced_accuracy")
        out.append(f"Amplified minus unsteered {fmt_delta(d)}.")
        lo = _lower(d)
        answer.append("amplifying the direction makes the answer follow the projection better than the unsteered "
                      f"answer{mark(summary, 'deltas/amplify', 'balanced_accuracy')}" if lo is not None and lo > 0 else
                      "amplifying the direction is not shown to make the answer follow the projection"
                      + (f" ({no_effect_sentence(d)})" if includes_zero(d) else ""))
    out.append("On held-out files, " + "; ".join(answer) + ".")
    return out + [_explanations(generations)]


def _recovered(conds: dict, name: str) -> str:
    """How the probe's lead over the unsteered answer (balanced accuracy, point values) compares with what
    `name` moved, in points; a share is given only where it lies between 0 and 100%."""
    def point(c: str) -> float | None:
        x = _interval((conds.get(c) or {}).get("all", {}).get("balanced_accuracy"))
        return None if x is None else x[0]
    probe, base, new = point("probe"), point("baseline"), point(name)
    if probe is None or base is None or new is None or probe - base <= 0:
        return " The probe alone does not lead the unsteered answer on these files (point values)."
    gap, moved = probe - base, new - base
    share = ("it closes none of that gap" if moved <= 0 else "it closes all of that gap and more" if moved >= gap
             else f"about {moved / gap:.0%} of that gap")
    return (f" The probe leads the unsteered answer by {gap:.2f} in balanced accuracy; the conditional answer "
            f"moves {moved:+.2f} from the unsteered one: {share} (point values, each with the intervals above).")


def _explanations(generations: list[dict] | None) -> str:
    """What conditional steering did to the side-by-side generated answers (few files: a description)."""
    rows = [g for g in generations or [] if "conditional_selected" in g]
    if not rows:
        return "Generated explanation: no conditionally steered generations in this run."
    chosen = [g for g in rows if g["conditional_selected"]]
    text_changed = [g for g in chosen if g.get("conditional") != g.get("unsteered")]
    flipped = [g for g in chosen if g.get("conditional_verdict") != g.get("unsteered_verdict")]
    right = [g for g in flipped if (g.get("label"), g.get("conditional_verdict")) in ((1, "yes"), (0, "no"))]
    head = (f"Generated explanation: the condition selected {len(chosen)} of the {len(rows)} side-by-side files; "
            f"steering changed the text of {len(text_changed)} of them and the parsed verdict of {len(flipped)} "
            f"({len(right)} now right); the {len(rows) - len(chosen)} not selected keep their unsteered text.")
    if not flipped:
        return head + " The explanation does not carry the probe's signal into a changed verdict on these files."
    return head + (" Read those texts below for whether the explanation follows the new verdict; "
                   f"{len(rows)} files are a description, not an estimate.")
