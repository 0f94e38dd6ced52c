"""Probing experiments: the per-layer probe curve on a run's samples (evaluation/probe_curve.py) and a
cross-fitted probe whose layer is chosen on the validation fold, comparable with steering's test rows."""

from __future__ import annotations

import numpy as np

from vulnsteer.activations.layers import block_outputs
from vulnsteer.evaluation.metrics import auroc, bootstrap_ci
from vulnsteer.evaluation.probe_curve import ProbeCurve, probe_curve_of
from vulnsteer.evaluation.probes import ProbeResult, fit_probe
from vulnsteer.evaluation.splits import CrossFit, TransferSplit
from vulnsteer.options import Readout
from vulnsteer.prompting.samples import SampleSet


def probe_curve(samples: SampleSet, readout: Readout, seed: int, k: int | None = None, repeats: int = 3) -> ProbeCurve:
    """Per-layer probes and their shuffled-label control on the residuals read at `readout`; k folds, by
    default `probe_folds` of the data's scenario groups."""
    return probe_curve_of(samples.readout(readout), [s.record for s in samples.samples], k, seed, repeats)


def curve_intervals(samples: SampleSet, result: ProbeResult, n_boot: int, seed: int) -> dict[str, list]:
    """Per layer, [low, high] 95% intervals of the out-of-fold AUROC and accuracy (at P = 0.5, as
    `ProbeResult.accuracy`), from a bootstrap over scenario groups; the per-layer point values stay in
    `result`. The out-of-fold scores are fixed here: the interval covers the choice of files, not refitting."""
    labels = samples.labels.tolist()
    groups = [s.record.group for s in samples.samples]
    out: dict[str, list] = {"auroc_ci": [], "accuracy_ci": []}
    for scores in result.scores:
        verdicts = ["yes" if p >= 0.5 else "no" for p in scores.tolist()]
        ci = bootstrap_ci(labels, scores.tolist(), verdicts, None, groups, n_boot=n_boot, seed=seed)
        out["auroc_ci"].append(list(ci["auroc"]))
        out["accuracy_ci"].append(list(ci["accuracy"]))
    return out


def crossfit_probe(samples: SampleSet, folds: CrossFit | TransferSplit, seed: int, readout: Readout) -> list[dict]:
    """Per test sample: the probe's logit, from a probe fit on the training folds (residuals read at
    `readout`) at the layer that scored best on the validation fold. Honest counterpart of the steering test
    rows (same folds)."""
    X = block_outputs(samples.readout(readout)).numpy()
    y = samples.labels.numpy()
    rows = []
    for f, (train, val, test) in enumerate(folds):
        best_layer, best_auc, best_model = -1, -np.inf, None
        for layer in range(X.shape[1]):
            model = fit_probe(X[train, layer], y[train], seed=seed)
            auc = auroc(y[val], model.decision_function(X[val, layer]))
            if auc > best_auc:
                best_layer, best_auc, best_model = layer, auc, model
        assert best_model is not None
        logits = best_model.decision_function(X[test, best_layer])
        for i, s in zip(test, logits.tolist()):
            rows.append(dict(index=int(i), fold=f, probe_layer=best_layer, probe_val_auroc=best_auc, probe=s))
    return sorted(rows, key=lambda r: r["index"])


def calibrated_thresholds(samples: SampleSet, folds: CrossFit | TransferSplit) -> list[dict]:
    """Control for "steering only moved the bias": the unsteered score with its yes/no threshold tuned on the
    validation fold (maximising balanced accuracy), applied to the test fold."""
    s = samples.scores.numpy()
    y = samples.labels.numpy()
    rows = []
    for f, (_train, val, test) in enumerate(folds):
        candidates = np.concatenate([[-np.inf], np.sort(s[val])])
        sv, yv = s[val], y[val]

        def bacc(t: float, sv: np.ndarray = sv, yv: np.ndarray = yv) -> float:
            pred = sv > t
            tpr = pred[yv == 1].mean() if (yv == 1).any() else np.nan
            tnr = (~pred[yv == 0]).mean() if (yv == 0).any() else np.nan
            return float(np.nanmean([tpr, tnr]))

        best = max(candidates, key=lambda t: (bacc(t), -abs(t)))
        for i in test:
            rows.append(dict(index=int(i), fold=f, threshold=float(best), calibrated=float(s[i] - best)))
    return sorted(rows, key=lambda r: r["index"])
