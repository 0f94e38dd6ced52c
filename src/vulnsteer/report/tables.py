"""Result tables read from a run folder: one neutral `TableData` of strings (rendered by `table_render`).

Every cell goes through `fmt` / `fmt_ci`, so the terminal, report.md and report.html show the same strings.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vulnsteer.errors import DataError
from vulnsteer.evaluation.readings import null_reading

NA = "n/a"
MAX_PUBLISHED = 8  # more published models than this: show the top KEEP_PUBLISHED
KEEP_PUBLISHED = 6
CONDITIONS: dict[str, str] = {
    "baseline": "baseline",
    "baseline_calibrated": "baseline, threshold tuned on validation",
    "steered": "steered (chosen on validation)",
    "random": "random-direction control",
    "opposite": "opposite sign",
    "probe": "probe (layer chosen on validation)",
    "amplify": "amplify (chosen on validation)",
    "conditional": "conditional (steered where the probe condition passes)",
}
# Rows a run has only where it computed them (runs before conditional steering have neither).
OPTIONAL_CONDITIONS = ("amplify", "conditional")
# pairs_both_right is PrimeVul's P-C (pair-wise correct: a vulnerable file and its patched twin both
# classified correctly); the label says so, so readers can set it beside PrimeVul's numbers.
PC_LABEL = "P-C (pairs both right)"
HEADLINE_METRICS = {
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced acc.",
    "auroc": "AUROC",
    "pairs_both_right": PC_LABEL,
}
# The paired comparisons a run reports, with the metrics their MDE is reported for.
COMPARISON_METRICS = HEADLINE_METRICS
TEMPLATE_METRICS = ("accuracy", "balanced_accuracy", "auroc", "pairs_both_right")
POWER_PERCENT = 80


@dataclass
class TableData:
    """A rendered-to-strings table: header, rows of cells, and an optional note under it."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    note: str = ""
    # (row, column) -> a document the cell links to, without its suffix: markdown links <doc>.md, HTML <doc>.html
    links: dict[tuple[int, int], str] = field(default_factory=dict)

    def numeric(self) -> list[bool]:
        """Per column: right-align it (every filled cell starts like a number)?"""
        def num(cell: str) -> bool:
            return cell in (NA, "—") or re.match(r"-?\d", cell) is not None
        return [i > 0 and all(num(r[i]) for r in self.rows) for i in range(len(self.columns))]


def _number(x: Any) -> float | None:
    """The point value of a stored metric: a plain number or the first item of `[v, lo, hi]`."""
    if isinstance(x, Sequence) and not isinstance(x, str):
        x = x[0] if len(x) else None
    if x is None or isinstance(x, bool):
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def fmt(x: Any, digits: int = 2) -> str:
    """0.6234 -> '0.62'; None/NaN -> 'n/a' (counts go through `fmt_count`)."""
    v = _number(x)
    return NA if v is None else f"{v:.{digits}f}"


def fmt_ci(x: Any, digits: int = 2) -> str:
    """[0.62, 0.5, 0.75] -> '0.62 [0.50, 0.75]'; a missing or NaN interval is shown as 'n/a'."""
    point = fmt(x, digits)
    if point == NA or not (isinstance(x, Sequence) and not isinstance(x, str) and len(x) >= 3):
        return point
    lo, hi = fmt(x[1], digits), fmt(x[2], digits)
    return f"{point} [{NA}]" if NA in (lo, hi) else f"{point} [{lo}, {hi}]"


def fmt_delta(x: Any, digits: int = 2) -> str:
    """[0.02, -0.05, 0.09, 0.10] -> '0.02 [-0.05, 0.09] MDE 0.10'; without a stored MDE, as `fmt_ci`."""
    text = fmt_ci(x, digits)
    mde = x[3] if isinstance(x, Sequence) and not isinstance(x, str) and len(x) >= 4 else None
    return text if text == NA or fmt(mde, digits) == NA else f"{text} MDE {fmt(mde, digits)}"


def includes_zero(x: Any) -> bool | None:
    """Whether a stored [value, low, high, ...] interval includes 0; None when it is missing or NaN."""
    if not (isinstance(x, Sequence) and not isinstance(x, str) and len(x) >= 3):
        return None
    lo, hi = _number(x[1]), _number(x[2])
    return None if lo is None or hi is None else lo <= 0 <= hi


def no_effect_sentence(x: Any, digits: int = 2) -> str:
    """What a stored delta [value, low, high(, mde)] rules out (its interval's ends) and what the design
    could detect (its MDE), as `null_reading` words it; runs from before the MDE was stored name no MDE."""
    if not (isinstance(x, Sequence) and not isinstance(x, str) and len(x) >= 3):
        return NA
    return null_reading(_number(x[1]), _number(x[2]), _number(x[3]) if len(x) >= 4 else None, digits)


def fmt_count(x: Any) -> str:
    v = _number(x)
    return NA if v is None else str(int(round(v)))


def cwe_order(keys: Sequence[str]) -> list[str]:
    """CWEs by number, other keys by name, 'all' last."""
    def key(k: str) -> tuple:
        m = re.fullmatch(r"CWE-(\d+)", k)
        return (k == "all", 0 if m else 1, int(m.group(1)) if m else 0, k)
    return sorted(keys, key=key)


def published_models(published: Mapping | None) -> tuple[list[str], str]:
    """Published model names by overall accuracy (descending), capped, and a note naming what was left out."""
    if not published or not published.get("models"):
        return [], ""
    models = published["models"]
    def overall(m: str) -> float:
        v = _number(models[m].get("all", {}).get("accuracy"))
        return -1.0 if v is None else v
    ranked = sorted(models, key=lambda m: (-overall(m), m))
    where = ", ".join(f"{k} {published[k]}" for k in ("study", "prompt", "subset") if published.get(k))
    note = f"Published LLMs: accuracy on the same files ({where})." if where else "Published LLMs: accuracy."
    note += " Their columns are point values: published.json keeps per-CWE counts, not per-file answers to resample."
    if len(ranked) > MAX_PUBLISHED:
        note += f" Top {KEEP_PUBLISHED} of {len(ranked)} shown; the rest are in published.json."
        ranked = ranked[:KEEP_PUBLISHED]
    return ranked, note


def _published_cell(published: Mapping, model: str, cwe: str) -> str:
    return fmt(published["models"][model].get(cwe, {}).get("accuracy"))


def baseline_data(summary: Mapping, published: Mapping | None, reading: str = "score") -> TableData:
    if reading not in summary:
        raise DataError(f"baseline summary has no {reading!r} reading; expected one of {sorted(summary)}")
    per_cwe = summary[reading]
    models, note = published_models(published)
    shown = {"accuracy": "accuracy", "tpr": "TPR", "tnr": "TNR", "balanced_accuracy": "balanced acc.",
             "auroc": "AUROC", "pairs_both_right": PC_LABEL, "unknown_rate": "unknown rate"}
    cols = ["CWE", "n", *shown.values()]
    data = TableData(f"Baseline ({reading} reading)", cols + [f"pub: {m}" for m in models], note=note)
    for cwe in cwe_order(list(per_cwe)):
        m = per_cwe[cwe]
        row = [cwe, fmt_count(m.get("n")), *(fmt_ci(m.get(k)) for k in shown)]
        data.rows.append(row + [_published_cell(published, p, cwe) for p in models])  # type: ignore[arg-type]
    return data


def headline_data(steer_summary: Mapping, where: str | None = None) -> TableData:
    """The held-out conditions table; `where` says what a transfer run fit on and tested on (transfer_text)."""
    conditions = steer_summary.get("conditions", {})
    deltas = steer_summary.get("deltas", {})
    bias = steer_summary.get("bias_only", {})
    cols = ["condition", *HEADLINE_METRICS.values(), "Δ accuracy", "Δ AUROC", "bias only?"]
    data = TableData(f"Held-out results ({where or 'cross-fitted test folds'})", cols)
    data.note = ("Δ: condition minus baseline on the same samples, with a paired cluster-bootstrap interval and "
                 f"the minimal detectable effect (MDE) at {POWER_PERCENT}% power, two-sided 5% level. "
                 "Random-direction control: every random draw of every file, pooled (its Δ pairs each draw with "
                 "its own file's baseline). "
                 f"{PC_LABEL}: PrimeVul's pair-wise correct metric. "
                 "Bias only: accuracy rose but AUROC did not (re-thresholding, not better ranking).")
    for name, label in CONDITIONS.items():
        if name in OPTIONAL_CONDITIONS and name not in conditions:
            continue
        m = conditions.get(name, {}).get("all", {})
        d = deltas.get(name, {})
        row = [label, *(fmt_ci(m.get(k)) for k in HEADLINE_METRICS)]
        row += ["—", "—"] if name == "baseline" else [fmt_delta(d.get("accuracy")), fmt_delta(d.get("auroc"))]
        flag = bias.get(name)
        row.append(NA if flag is None else ("yes" if flag else "no"))
        data.rows.append(row)
    return data


def per_cwe_data(steer_summary: Mapping, published: Mapping | None) -> TableData:
    conditions = steer_summary.get("conditions", {})
    shown = [c for c in ("baseline", "steered", "random") if c in conditions]
    models, note = published_models(published)
    cwes = cwe_order(list({k for c in shown for k in conditions[c]}))
    cols = ["CWE", "n", *(f"{CONDITIONS[c].split(' (')[0]} acc." for c in shown), *(f"pub: {m}" for m in models)]
    few = ("A value shown as 'x [n/a]' had fewer than 5 scenario groups in that CWE: too few to resample for "
           "an interval (runs from before this rule show such intervals).")
    data = TableData("Held-out accuracy per CWE, beside published LLMs", cols, note=f"{note} {few}".strip())
    for cwe in cwes:
        n = next((conditions[c][cwe].get("n") for c in shown if cwe in conditions[c]), None)
        row = [cwe, fmt_count(n), *(fmt_ci(conditions[c].get(cwe, {}).get("accuracy")) for c in shown)]
        data.rows.append(row + [_published_cell(published, p, cwe) for p in models])  # type: ignore[arg-type]
    return data


def conditional_data(conditional: Mapping) -> TableData:
    """Per fold, the condition chosen on validation (steer/conditional.json) and how many samples it steered."""
    data = TableData("Condition chosen on each validation fold (conditional steering)",
                     ["fold", "rule", "steering configuration", "val. balanced acc.", "val. steered", "test steered"])
    data.note = ("The condition direction is the logistic probe fit on the training folds; its layer, side and "
                 "threshold were chosen on the validation fold, so its validation numbers are optimistic.")
    for c in conditional.get("folds") or []:
        data.rows.append([str(c.get("fold")), str(c.get("rule")), str(c.get("config")),
                          fmt((c.get("val_metrics") or {}).get("balanced_accuracy")),
                          f"{fmt_count(c.get('val_selected'))} of {fmt_count(c.get('n_val'))}",
                          f"{fmt_count(c.get('test_selected'))} of {fmt_count(c.get('n_test'))}"])
    return data


def templates_data(table: Mapping) -> TableData:
    """One row per prompt template the baseline scored (`vulnsteer baseline --template all`), same files."""
    cols = ["template", "description", "n", *(HEADLINE_METRICS[k] for k in TEMPLATE_METRICS)]
    data = TableData(f"Baseline per prompt template ({table.get('reading', 'score')} reading, same files)", cols)
    data.note = ("Answer score only: generating an answer under every template would cost one generation pass "
                 "per template. 95% intervals from a bootstrap over scenario groups.")
    for t in table.get("templates") or []:
        m = t.get("metrics") or {}
        data.rows.append([str(t.get("id")), str(t.get("description")), fmt_count(m.get("n")),
                          *(fmt_ci(m.get(k)) for k in TEMPLATE_METRICS)])
    return data
