"""Turn the steering experiment's per-sample test rows into the numbers a reviewer asks for: every
condition's metrics with intervals, paired deltas against the baseline with their minimal detectable effects,
flip rates with intervals, and whether an improvement is more than a shift of the yes/no bias."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from vulnsteer.activations.scoring import verdict
from vulnsteer.evaluation.deltas import delta_ci, mean_ci
from vulnsteer.evaluation.metrics import detection_metrics
from vulnsteer.evaluation.predictions import Predictions, per_cwe
from vulnsteer.evaluation.readings import null_reading
from vulnsteer.experiments.baseline import as_triples
from vulnsteer.experiments.conditional import masked_random
from vulnsteer.experiments.steer_results import Choice, TestRow

CONDITIONS = ("baseline", "baseline_calibrated", "steered", "random", "opposite", "probe")
# Reported where every test row has them: amplify (a grid with amplify strengths), conditional (conditional.py).
OPTIONAL_CONDITIONS = ("amplify", "conditional")


def conditions_of(rows: Sequence[TestRow]) -> tuple[str, ...]:
    """The conditions these test rows carry: `CONDITIONS`, then each optional one every row has."""
    has = {"amplify": all(r.amplify == r.amplify for r in rows),
           "conditional": all(r.selected is not None for r in rows)}
    return CONDITIONS + tuple(c for c in OPTIONAL_CONDITIONS if rows and has[c])


def _scores(r: TestRow, condition: str) -> float:
    return float({"baseline": r.baseline, "baseline_calibrated": r.calibrated, "steered": r.steered,
                  "opposite": r.opposite, "probe": r.probe, "amplify": r.amplify,
                  "conditional": r.conditional}[condition])


def predictions(rows: Sequence[TestRow], condition: str, draws_of: Callable[[TestRow], Sequence[float]] | None = None,
                partner: str | None = None) -> Predictions:
    """One condition's columns. The random control contributes one row per random direction (same group, so
    the cluster bootstrap treats the draws of one scenario as one unit); draw k of a pair forms its own pair
    (pair ids suffixed) so pairs stay one vulnerable + one secure. `partner`: instead of the draws' scores,
    that condition's score repeated once per draw, so a paired delta compares each draw with its own file
    (`draws_of` picks the draws, `masked_random` for the conditional control)."""
    if condition == "random":
        draws = [(r, k, s) for r in rows for k, s in enumerate((draws_of or _draws)(r))]
        return Predictions.of(
            [r.label for r, _, _ in draws], [s if partner is None else _scores(r, partner) for r, _, s in draws],
            [None if r.pair_id is None else f"{r.pair_id}#random{k}" for r, k, _ in draws],
            [r.group for r, _, _ in draws], [r.cwe for r, _, _ in draws],
        )
    return Predictions.of([r.label for r in rows], [_scores(r, condition) for r in rows],
                          [r.pair_id for r in rows], [r.group for r in rows], [r.cwe for r in rows])


def _draws(r: TestRow) -> Sequence[float]:
    return r.random


def condition_metrics(rows: Sequence[TestRow], n_boot: int, seed: int) -> dict[str, dict]:
    return {c: as_triples(per_cwe(predictions(rows, c), n_boot=n_boot, seed=seed)) for c in conditions_of(rows)}


def deltas(rows: Sequence[TestRow], n_boot: int, seed: int) -> dict[str, dict]:
    """Condition minus baseline on the same samples, per metric as [value, low, high, minimal detectable
    effect] (`DeltaWithCI.stored`). The random control is its pooled row, as its metrics are: every draw
    against its own file's baseline score."""
    out = {}
    for c in conditions_of(rows)[1:]:
        base = predictions(rows, "random", partner="baseline") if c == "random" else predictions(rows, "baseline")
        out[c] = {k: m.stored() for k, m in delta_ci(base, predictions(rows, c), n_boot, seed).items()}
    return out


def steered_minus_random(rows: Sequence[TestRow], n_boot: int, seed: int) -> dict[str, list]:
    """Steered minus the random-direction control (all draws pooled, each paired with its own file's steered
    score): the comparison that says whether the chosen direction matters or any push of that size would do."""
    d = delta_ci(predictions(rows, "random"), predictions(rows, "random", partner="steered"), n_boot, seed)
    return {k: m.stored() for k, m in d.items()}


def conditional_minus_random(rows: Sequence[TestRow], n_boot: int, seed: int) -> dict[str, list] | None:
    """Conditional minus the random-direction control under the same condition mask (each draw where selected,
    the unsteered score elsewhere; draws pooled, each paired with its own file's conditional score); None
    without conditional steering."""
    if "conditional" not in conditions_of(rows):
        return None
    random = predictions(rows, "random", draws_of=masked_random)
    cond = predictions(rows, "random", draws_of=masked_random, partner="conditional")
    return {k: m.stored() for k, m in delta_ci(random, cond, n_boot, seed).items()}


def flips(rows: Sequence[TestRow], n_boot: int, seed: int) -> dict[str, dict[str, list[float]]]:
    """Verdict changes against the baseline, both directions, for vulnerable and secure files alike (a fix,
    a secure file no longer called vulnerable, counts as much as a harm), as [rate, low, high] with a
    bootstrap over scenario groups."""
    out = {}
    base = predictions(rows, "baseline")
    for c in conditions_of(rows)[1:]:
        p = predictions(rows, c)
        if c == "random":
            b = [verdict(r.baseline) for r in rows for _ in r.random]
        else:
            b = list(base.verdicts)
        items = list(zip(p.labels, b, p.verdicts, p.groups))

        def rate(label: int, before: str, after: str, items: list = items) -> list[float]:
            mine = [(x == before and y == after, g) for lab, x, y, g in items if lab == label]
            m = mean_ci([float(f) for f, _ in mine], [g for _, g in mine], n_boot, seed)
            return [m.value, m.low, m.high]

        out[c] = {
            "vuln_to_secure": rate(1, "yes", "no"), "vuln_fixed": rate(1, "no", "yes"),
            "secure_to_vuln": rate(0, "no", "yes"), "secure_fixed": rate(0, "yes", "no"),
        }
    return out


def bias_only(delta: dict[str, dict]) -> dict[str, bool]:
    """True when accuracy rose but AUROC did not move beyond its interval: the condition re-thresholded
    the answer rather than improving how the model ranks vulnerable above secure code."""
    out = {}
    for c, d in delta.items():
        acc, auc = d["accuracy"], d["auroc"]
        auc_flat = auc[1] is None or auc[1] != auc[1] or auc[1] <= 0.0
        out[c] = bool(acc[0] is not None and acc[0] > 0 and auc_flat)
    return out


def verdict_text(conds: dict, delta: dict, bias: dict, vs_random: dict) -> str:
    """One honest sentence on whether steering helped, judged against its random-direction control."""
    st, rnd = conds["steered"]["all"], conds["random"]["all"]
    d_st = delta["steered"]
    def fmt(m: list) -> str:
        return "n/a" if m[0] is None or m[0] != m[0] else f"{m[0]:.3f} [{m[1]:.3f}, {m[2]:.3f}]"
    beats_base = d_st["balanced_accuracy"][1] is not None and d_st["balanced_accuracy"][1] > 0
    low = vs_random["balanced_accuracy"][1]
    beats_random = low is not None and low == low and low > 0
    parts = [
        f"Steered balanced accuracy {fmt(st['balanced_accuracy'])} vs random-direction control (all draws pooled) "
        f"{fmt(rnd['balanced_accuracy'])}; change vs baseline {fmt(d_st['balanced_accuracy'])}, "
        f"AUROC change {fmt(d_st['auroc'])}; steered minus random (paired) {fmt(vs_random['balanced_accuracy'])}."
    ]
    if beats_base and beats_random and not bias["steered"]:
        parts.append("Steering improved detection beyond the baseline and above the random control's interval.")
    elif beats_base and bias["steered"]:
        parts.append("The gain is a yes/no bias shift (AUROC flat): steering did not improve ranking.")
    else:
        parts.append("Steering did NOT reliably improve detection on held-out data (interval includes no gain "
                     "or it does not clear the random control).")
    paired = vs_random["balanced_accuracy"]
    if paired[1] is not None and paired[1] == paired[1] and paired[1] <= 0 <= paired[2]:
        mde = paired[3] if len(paired) > 3 else None
        parts.append(f"Steered minus random, balanced accuracy: {null_reading(paired[1], paired[2], mde, 3)}.")
    return " ".join(parts)


def sweep_summary(sweep: Sequence[dict], labels: Sequence[int], pair_ids: Sequence[str | None]) -> list[dict]:
    """Validation metrics of every configuration in every fold."""
    by_cfg: dict[tuple, list[tuple[int, float]]] = {}
    for r in sweep:
        by_cfg.setdefault((r["fold"], r["layer"], r["method"], r["operator"], r["alpha"]), []).append((r["index"], r["score"]))
    out = []
    for (fold, layer, method, op, alpha), items in sorted(by_cfg.items()):
        idx = [i for i, _ in items]
        s = [x for _, x in items]
        m = detection_metrics([labels[i] for i in idx], s, [verdict(x) for x in s], [pair_ids[i] for i in idx])
        out.append(dict(fold=fold, layer=layer, method=method, operator=op, alpha=alpha,
                        balanced_accuracy=m["balanced_accuracy"], auroc=m["auroc"], accuracy=m["accuracy"],
                        yes_rate=m["yes_rate"]))
    return out


def curves(summary_rows: Sequence[dict]) -> dict:
    """Validation strength curves (pooled over folds by averaging) at each method/operator's best layer,
    and layer curves at its best strength."""
    agg: dict[tuple, list[tuple[float, float]]] = {}
    for r in summary_rows:
        agg.setdefault((r["method"], r["operator"], r["layer"], r["alpha"]), []).append((r["balanced_accuracy"], r["auroc"]))
    mean = {k: (float(np.nanmean([a for a, _ in v])), float(np.nanmean([b for _, b in v]))) for k, v in agg.items()}
    out: dict = {"by_layer": {}}
    for method, op in sorted({(k[0], k[1]) for k in mean}):
        keys = [k for k in mean if k[0] == method and k[1] == op]
        best = max(keys, key=lambda k: (mean[k][0], mean[k][1]))
        at_layer = sorted(k for k in keys if k[2] == best[2])
        at_alpha = sorted((k for k in keys if k[3] == best[3]), key=lambda k: k[2])
        name = f"{method}/{op}"
        out[name] = {"layer": best[2], "alphas": [k[3] for k in at_layer],
                     "balanced_accuracy": [mean[k][0] for k in at_layer], "auroc": [mean[k][1] for k in at_layer]}
        out["by_layer"][name] = {"alpha": best[3], "layers": [k[2] for k in at_alpha],
                                 "balanced_accuracy": [mean[k][0] for k in at_alpha], "auroc": [mean[k][1] for k in at_alpha]}
    return out


def strength_slopes(sweep: Sequence[dict], choices: Sequence[Choice], labels: Sequence[int]) -> list[dict]:
    """The chosen vector's effect on the answer, per fold: the least-squares slope of the validation yes/no
    score against strength (the score's change per unit of strength), within files (each file's own mean
    removed, so files' differing baselines do not enter), at the layer and method the fold chose for steering,
    for each operator swept there; over all files and per label, with the change over the swept range
    (`span`, in the score's units). An operator swept at one strength has no slope (None)."""
    out = []
    for c in choices:
        by_op: dict[str, dict[int, list[tuple[float, float]]]] = {}
        for r in sweep:
            if r["fold"] == c.fold and r["layer"] == c.layer and r["method"] == c.method.value:
                by_op.setdefault(r["operator"], {}).setdefault(r["index"], []).append((r["alpha"], r["score"]))
        for op, files in sorted(by_op.items()):
            alphas = sorted({a for pts in files.values() for a, _ in pts})

            def slope(want: set[int], files: dict = files) -> float | None:
                centred = [np.asarray(p, dtype=float) - np.mean(p, axis=0) for i, p in files.items() if labels[i] in want]
                if not centred:
                    return None
                a, s = np.concatenate(centred).T
                den = float(a @ a)
                return float(a @ s / den) if den > 0 else None

            total = slope({0, 1})
            out.append(dict(fold=c.fold, layer=c.layer, method=c.method.value, operator=op,
                            chosen=op == c.operator.value, alpha_min=alphas[0], alpha_max=alphas[-1],
                            slope=total, slope_vulnerable=slope({1}), slope_secure=slope({0}),
                            span=None if total is None else total * (alphas[-1] - alphas[0])))
    return out


def condition_selects(rows: Sequence[TestRow]) -> dict[str, float] | None:
    """Shares of held-out vulnerable and secure files the condition selected for steering (a condition that
    separates the labels selects one far more than the other); None without conditional steering."""
    if "conditional" not in conditions_of(rows):
        return None
    def share(label: int) -> float:
        mine = [bool(r.selected) for r in rows if r.label == label]
        return float(np.mean(mine)) if mine else float("nan")
    return {"vulnerable": share(1), "secure": share(0)}
