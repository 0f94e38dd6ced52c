"""Turn the steering experiment's per-sample test rows into the numbers a reviewer asks for: every
condition's metrics with intervals, paired deltas against the baseline, flip rates, and whether an
improvement is more than a shift of the yes/no bias."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vulnsteer.evaluation.metrics import detection_metrics, paired_delta_ci, per_cwe
from vulnsteer.evaluation.scoring import verdict
from vulnsteer.experiments.baseline import as_triples

CONDITIONS = ("baseline", "baseline_calibrated", "steered", "random", "opposite", "probe")


def _columns(rows: Sequence[dict], condition: str) -> tuple[list[dict], list[float]]:
    """Rows and scores of one condition; the random control contributes one row per random direction
    (same group, so the cluster bootstrap treats the draws of one scenario as one unit)."""
    if condition == "random":
        # Draw k of a pair forms its own pair (pair ids suffixed) so pairs stay one vulnerable + one secure.
        out_rows = [
            {**r, "pair_id": None if r["pair_id"] is None else f"{r['pair_id']}#random{k}"}
            for r in rows for k in range(len(r["random"]))
        ]
        return out_rows, [s for r in rows for s in r["random"]]
    key = {"baseline_calibrated": "calibrated"}.get(condition, condition)
    return list(rows), [float(r[key]) for r in rows]


def condition_metrics(rows: Sequence[dict], n_boot: int, seed: int) -> dict[str, dict]:
    out = {}
    for c in CONDITIONS:
        rs, scores = _columns(rows, c)
        out[c] = as_triples(per_cwe(
            [r["label"] for r in rs], scores, [verdict(s) for s in scores], [r["pair_id"] for r in rs],
            [r["group"] for r in rs], [r["cwe"] for r in rs], n_boot=n_boot, seed=seed,
        ))
    return out


def deltas(rows: Sequence[dict], n_boot: int, seed: int) -> dict[str, dict]:
    """Condition minus baseline on the same samples (the random control: its mean score over draws)."""
    labels = [r["label"] for r in rows]
    base = [r["baseline"] for r in rows]
    out = {}
    for c in CONDITIONS[1:]:
        if c == "random":
            # Verdicts of each draw would need one delta per draw; the per-sample majority keeps it paired.
            scores = [float(np.median(r["random"])) for r in rows]
        else:
            scores = _columns(rows, c)[1]
        d = paired_delta_ci(
            labels, base, [verdict(s) for s in base], scores, [verdict(s) for s in scores],
            [r["pair_id"] for r in rows], [r["group"] for r in rows], n_boot=n_boot, seed=seed,
        )
        out[c] = {k: [m.value, m.low, m.high] for k, m in d.items()}
    return out


def steered_minus_random(rows: Sequence[dict], n_boot: int, seed: int) -> dict[str, list]:
    """Steered minus the random-direction control (its median score over draws), paired per sample: the
    comparison that says whether the chosen direction matters or any push of that size would do."""
    labels = [r["label"] for r in rows]
    rand = [float(np.median(r["random"])) for r in rows]
    st = [float(r["steered"]) for r in rows]
    d = paired_delta_ci(
        labels, rand, [verdict(s) for s in rand], st, [verdict(s) for s in st],
        [r["pair_id"] for r in rows], [r["group"] for r in rows], n_boot=n_boot, seed=seed,
    )
    return {k: [m.value, m.low, m.high] for k, m in d.items()}


def flips(rows: Sequence[dict]) -> dict[str, dict[str, float]]:
    """Among vulnerable files, the share whose verdict went yes -> no; among secure ones, no -> yes."""
    out = {}
    for c in CONDITIONS[1:]:
        rs, scores = _columns(rows, c)
        base = [verdict(r["baseline"]) for r in rs]
        new = [verdict(s) for s in scores]
        vul = [(b, n) for r, b, n in zip(rs, base, new) if r["label"] == 1]
        sec = [(b, n) for r, b, n in zip(rs, base, new) if r["label"] == 0]
        out[c] = {
            "vuln_to_secure": float(np.mean([b == "yes" and n == "no" for b, n in vul])) if vul else float("nan"),
            "secure_to_vuln": float(np.mean([b == "no" and n == "yes" for b, n in sec])) if sec else float("nan"),
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
        f"Steered balanced accuracy {fmt(st['balanced_accuracy'])} vs random-direction control "
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
