"""Conditional steering, after CAST (Lee et al., "Programming Refusal with Conditional Activation Steering",
IBM activation-steering): steer a sample only when its projection on a condition direction passes a threshold.

Per cross-fitting fold of the steering experiment (experiments/steer.py):

* the condition direction at every block is the logistic-probe direction (`probe_direction`, the "probe"
  method of vectors/methods.py) fit on the training folds' residuals at the run's readout (--readout);
* the condition layer, the threshold and the side (steer where the projection lies above it, or below) are
  chosen on the validation fold alone: the candidate whose conditional validation scores rank best by the
  experiment's selection metric (ties: its AUROC, then fewer validation samples steered, then the lower layer);
* on the test fold, a sample's conditional score is its steered score (the fold's chosen configuration) where
  its projection passes, else its unsteered score, bit for bit.

As CAST reads its condition on the prompt's hidden states before steering, the projection is read on the
unsteered pass (at the run's readout, the mean over a long file's windows), so whether a sample is steered
never depends on the steering.

The steering configuration is the one the fold chose for steering every sample, not one chosen jointly with
the condition: that is the cheaper sound option. A joint choice would multiply the candidates about a
thousandfold on a dozen validation samples (more room to overfit the choice) and would need the test fold
scored again under the configuration it picked; this way no forward pass is added, since the sweep scored
every configuration on validation and the chosen one on test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from vulnsteer.activations.layers import block_outputs
from vulnsteer.activations.scoring import verdict
from vulnsteer.evaluation.metrics import detection_metrics
from vulnsteer.experiments.steer_results import Choice, SteerResult, TestRow
from vulnsteer.options import ConditionSide, Readout
from vulnsteer.prompting.samples import SampleSet
from vulnsteer.vectors.methods import probe_direction


@dataclass(frozen=True)
class ConditionChoice:
    """The condition one fold's validation samples picked, and how many samples it steered."""

    fold: int
    layer: int  # the block whose output the condition reads
    side: ConditionSide
    threshold: float  # -inf / inf: every sample or none passes
    config: str  # the steering configuration applied where the condition passes (the fold's Choice)
    val_metrics: dict[str, float]  # of the conditional validation scores
    val_selected: int
    n_val: int
    test_selected: int
    n_test: int

    def passes(self, projection: np.ndarray) -> np.ndarray:
        """Which projections (on this condition's direction and layer) pass: these samples are steered."""
        return projection > self.threshold if self.side is ConditionSide.ABOVE else projection < self.threshold

    def rule(self) -> str:
        """The rule in words, e.g. 'steer where the projection at block 3 > 0.41'."""
        if not np.isfinite(self.threshold):
            steer_all = (self.threshold < 0) == (self.side is ConditionSide.ABOVE)
            return "steer every sample" if steer_all else "steer no sample"
        sign = ">" if self.side is ConditionSide.ABOVE else "<"
        return f"steer where the projection at block {self.layer} {sign} {self.threshold:.4g}"


@dataclass(frozen=True)
class ConditionalResult:
    """Per fold the chosen condition; per test sample (by index) whether it was steered, and its projection."""

    choices: list[ConditionChoice]
    selected: dict[int, bool]
    projection: dict[int, float]

    @classmethod
    def merge(cls, parts: Sequence[ConditionalResult]) -> ConditionalResult:
        """One result from parts that each covered some folds (one per chosen template)."""
        return cls(sorted((c for p in parts for c in p.choices), key=lambda c: c.fold),
                   {i: s for p in parts for i, s in p.selected.items()},
                   {i: x for p in parts for i, x in p.projection.items()})


def _candidates(p: np.ndarray) -> list[tuple[ConditionSide, float]]:
    """Thresholds between consecutive distinct validation projections, plus steer-all and steer-none."""
    v = np.unique(p)
    cuts = [-np.inf, *((v[:-1] + v[1:]) / 2).tolist(), np.inf]
    return [(side, float(t)) for side in ConditionSide for t in cuts]


def _passes(p: np.ndarray, side: ConditionSide, t: float) -> np.ndarray:
    return p > t if side is ConditionSide.ABOVE else p < t


def choose_condition(
    projections: np.ndarray, steered: np.ndarray, unsteered: np.ndarray, labels: Sequence[int],
    pair_ids: Sequence[str | None], select: str,
) -> tuple[int, ConditionSide, float, dict[str, float], int]:
    """(layer, side, threshold, metrics, samples steered) whose conditional scores rank best on validation.

    `projections` [n_layers, n_val]; `steered`, `unsteered` [n_val] the chosen configuration's and the
    unsteered scores of the same validation samples."""
    nan_low = lambda x: -1.0 if x != x else x  # noqa: E731 - NaN never wins
    best: tuple | None = None
    for layer, p in enumerate(projections):
        for side, t in _candidates(p):
            mask = _passes(p, side, t)
            s = np.where(mask, steered, unsteered).tolist()
            m = detection_metrics(list(labels), s, [verdict(x) for x in s], list(pair_ids))
            rank = (nan_low(m[select]), nan_low(m["auroc"]), -int(mask.sum()))
            if best is None or rank > best[0]:
                best = (rank, (layer, side, t, m, int(mask.sum())))
    assert best is not None
    return best[1]


def condition_directions(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """[n_layers, d] the logistic-probe direction at every block, fit on residuals `x` [n, n_layers, d]."""
    return torch.stack([probe_direction(x[:, layer], y) for layer in range(x.shape[1])])


def _val_steered(sweep: Sequence[dict], choice: Choice, val: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The validation samples the sweep scored (all of `val` unless --search-subsample) and the chosen
    configuration's scores of them, from the sweep (no forward pass)."""
    key = (choice.layer, choice.method.value, choice.operator.value, choice.alpha)
    scores = {r["index"]: r["score"] for r in sweep
              if r["fold"] == choice.fold and (r["layer"], r["method"], r["operator"], r["alpha"]) == key}
    scored = np.array([i for i in val if int(i) in scores], dtype=int)
    return scored, np.array([scores[int(i)] for i in scored], dtype=float)


def conditional_steering(samples: SampleSet, result: SteerResult, select: str, readout: Readout) -> ConditionalResult:
    """The condition of every fold `result` steered, chosen on its validation samples, applied to its test
    samples (see the module docstring). `samples` are the ones `result` steered; no test label is read.
    The condition is read on `readout`, the residuals the run's vectors and probes are fit on."""
    x = block_outputs(samples.readout(readout)).double()
    y = samples.labels
    unsteered = samples.scores.double().numpy()
    labels = y.tolist()
    pair_ids = [s.record.pair_id for s in samples.samples]
    choices, selected, projection = [], {}, {}
    for choice in result.choices:
        train, val, test = result.folds.split(choice.fold)
        directions = condition_directions(x[train], y[train]).double()
        proj = torch.einsum("nld,ld->ln", x, directions).numpy()  # [n_layers, n]
        val, steered = _val_steered(result.sweep, choice, val)
        layer, side, t, m, n_sel = choose_condition(
            proj[:, val], steered, unsteered[val], [labels[i] for i in val],
            [pair_ids[i] for i in val], select)
        passed = _passes(proj[layer, test], side, t)
        for i, ok, p in zip(test.tolist(), passed.tolist(), proj[layer, test].tolist()):
            selected[int(i)], projection[int(i)] = bool(ok), float(p)
        choices.append(ConditionChoice(choice.fold, layer, side, t, choice.label(), m, n_sel, len(val),
                                       int(passed.sum()), len(test)))
    return ConditionalResult(sorted(choices, key=lambda c: c.fold), selected, projection)


def with_conditional(rows: Sequence[TestRow], cond: ConditionalResult) -> list[TestRow]:
    """The test rows with their conditional score: the steered score where selected, else the unsteered one."""
    return [replace(r, selected=cond.selected[r.index],
                    conditional=r.steered if cond.selected[r.index] else r.baseline) for r in rows]


def masked_random(r: TestRow) -> list[float]:
    """The random-direction control under the same condition: each draw's score where `r` was selected, else
    its unsteered score."""
    return list(r.random) if r.selected else [r.baseline] * len(r.random)


def with_conditional_text(generations: Sequence[dict], rows: Sequence[TestRow]) -> list[dict]:
    """Side-by-side generations with the conditionally steered answer: the steered text where the condition
    selected the file (the same configuration, so the same generation), else the unsteered text itself,
    marked not selected."""
    selected = {r.id: r.selected for r in rows}
    out = []
    for g in generations:
        chosen = selected.get(g["id"])
        if chosen is None:
            out.append(dict(g))
            continue
        side = "steered" if chosen else "unsteered"
        out.append({**g, "conditional": g[side], "conditional_verdict": g[f"{side}_verdict"],
                    "conditional_selected": chosen})
    return out


def conditional_file(cond: ConditionalResult) -> dict:
    """steer/conditional.json: per fold the condition chosen on validation and how many samples it steered."""
    return {"folds": [dict(fold=c.fold, layer=c.layer, side=c.side.value, threshold=c.threshold, rule=c.rule(),
                           config=c.config, val_metrics=c.val_metrics, val_selected=c.val_selected, n_val=c.n_val,
                           test_selected=c.test_selected, n_test=c.n_test) for c in cond.choices]}
