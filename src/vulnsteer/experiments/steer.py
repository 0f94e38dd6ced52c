"""The steering experiment: vectors fit on training folds, configuration chosen on a validation fold,
effect measured on a test fold never used for either, beside random-direction and opposite-sign controls.

Cross-fitting over scenario groups (fold f tests, fold f+1 validates, the rest trains) tests every
sample exactly once while keeping each test sample's scenario, its patched twin and its augmentations
out of both the vector and the choice of configuration.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from vulnsteer.data.records import Record
from vulnsteer.errors import VulnsteerError
from vulnsteer.evaluation.metrics import detection_metrics
from vulnsteer.evaluation.splits import CrossFit, assert_no_leak, cross_fit
from vulnsteer.evaluation.scoring import AnswerWords, verdict
from vulnsteer.experiments.samples import SampleSet
from vulnsteer.model.architecture import ModelParts
from vulnsteer.progress import progress_bar
from vulnsteer.activations.recorder import Recording
from vulnsteer.steering.operators import Intervention
from vulnsteer.steering.resume import record_full
from vulnsteer.steering.sweep import (
    Setting, intervention, score_full_forwards, score_interventions, score_interventions_all_positions,
)
from vulnsteer.vectors.methods import METHODS
from vulnsteer.vectors.training import POOLED, STRENGTH_UNITS, Direction, fit_directions, fit_per_cwe, random_like


@dataclass(frozen=True)
class SteerConfig:
    layers: tuple[int, ...] | None = None  # None: every block
    methods: tuple[str, ...] = ("caa", "pca", "probe")
    # A calibration run of the 0.5B model: under +-4 sigma no answer flipped; +-16..64 sigma moves the
    # yes/no score by several nats at middle layers. Both signs: which way helps is measured, not assumed.
    add_alphas: tuple[float, ...] = (-32.0, -16.0, -8.0, -4.0, 4.0, 8.0, 16.0, 32.0)  # units of sigma along u
    amplify_alphas: tuple[float, ...] = (-1.0, 4.0, 16.0, 64.0)
    ablate: bool = True
    k_folds: int = 4
    n_random: int = 3
    select: str = "balanced_accuracy"  # validation metric that picks the configuration
    per_cwe: bool = False  # one direction per CWE (pooled where a CWE has too few training pairs)
    strength_unit: str = "sigma"  # what an additive strength of 1 means (vectors.training.STRENGTH_UNITS)
    scope: str = "answer"  # steered positions: the answer position only, or "all" prompt positions (slower)
    seed: int = 0

    def settings(self) -> list[Setting]:
        out = [Setting("add", a) for a in self.add_alphas] + [Setting("amplify", a) for a in self.amplify_alphas]
        return out + ([Setting("ablate", 0.0)] if self.ablate else [])


@dataclass(frozen=True)
class Choice:
    fold: int
    layer: int
    method: str
    setting: Setting
    val_metrics: dict[str, float]

    def label(self) -> str:
        return f"L{self.layer} {self.method} {self.setting.key()}"


@dataclass
class SteerResult:
    folds: CrossFit
    sweep: list[dict] = field(default_factory=list)  # one row per (validation sample, configuration)
    choices: list[Choice] = field(default_factory=list)
    directions: list[dict[str, Direction]] = field(default_factory=list)  # per fold: CWE (or pooled) -> chosen direction
    test: list[dict] = field(default_factory=list)  # one row per test sample, every condition's score


def _val_rank(metrics: dict[str, float], setting: Setting, select: str) -> tuple:
    nan_low = lambda x: -1.0 if x != x else x  # noqa: E731 - NaN never wins
    return (nan_low(metrics[select]), nan_low(metrics["auroc"]), -abs(setting.alpha))


def _choose(sweep: list[dict], fold: int, samples: SampleSet, val: np.ndarray, cfg: SteerConfig) -> Choice:
    labels = samples.labels.numpy()
    pair_ids = [s.record.pair_id for s in samples.samples]
    by_config: dict[tuple, dict[int, float]] = {}
    for row in sweep:
        if row["fold"] == fold:
            key = (row["layer"], row["method"], row["operator"], row["alpha"])
            by_config.setdefault(key, {})[row["index"]] = row["score"]
    best: tuple | None = None
    for (layer, method, op, alpha), scores in by_config.items():
        idx = [i for i in val if i in scores]
        s = [scores[i] for i in idx]
        m = detection_metrics(labels[idx], s, [verdict(x) for x in s], [pair_ids[i] for i in idx])
        setting = Setting(op, alpha)
        rank = _val_rank(m, setting, cfg.select)
        if best is None or rank > best[0]:
            best = (rank, Choice(fold, layer, method, setting, m))
    assert best is not None
    return best[1]


def training_set(
    main: SampleSet, extra: SampleSet | None, train: np.ndarray, held: np.ndarray
) -> tuple[torch.Tensor, list[Record]]:
    """Residuals and records a fold's vectors are fit on: its training samples, plus the extra (training-only)
    samples whose scenario group is not among the `held` (validation and test) samples' groups."""
    residuals, records = [main.residuals[train]], [main.samples[i].record for i in train]
    if extra is not None:
        held_groups = {main.samples[i].record.group for i in held}
        keep = [i for i, s in enumerate(extra.samples) if s.record.group not in held_groups and not s.fit.skipped]
        residuals.append(extra.residuals[keep])
        records += [extra.samples[i].record for i in keep]
    return torch.cat(residuals), records


def _identity(direction: Direction) -> Intervention:
    """A no-op edit at the direction's layer: the unsteered logits through the same re-entry path."""
    return Intervention(direction.layer, "add", torch.zeros_like(direction.u), 0.0)


def _check(cfg: SteerConfig, parts: ModelParts) -> list[int]:
    layers = list(cfg.layers) if cfg.layers is not None else list(range(parts.n_layers))
    bad = [x for x in layers if not 0 <= x < parts.n_layers]
    if bad:
        raise VulnsteerError(f"layer {bad[0]} out of range: the model has blocks 0..{parts.n_layers - 1}")
    unknown = [m for m in cfg.methods if m not in METHODS]
    if unknown or not cfg.methods:
        raise VulnsteerError(f"unknown method {unknown[0] if unknown else '(none)'!r}; use any of {', '.join(METHODS)}")
    if cfg.scope not in ("answer", "all"):
        raise VulnsteerError(f"unknown steering scope {cfg.scope!r}; use answer or all")
    if cfg.strength_unit not in STRENGTH_UNITS:
        raise VulnsteerError(f"unknown strength unit {cfg.strength_unit!r}; use one of {', '.join(STRENGTH_UNITS)}")
    return layers


@dataclass
class _Scorer:
    """Scores interventions on sample i in the configured scope; an "all" scope recording is kept for the
    sample last asked about (the test rows ask twice per sample). Full forwards where re-entry is not exact."""

    parts: ModelParts
    main: SampleSet
    words: AnswerWords
    scope: str
    model: nn.Module | None
    _last: tuple[int, Recording] | None = None

    def __call__(self, i: int, ivs: list[Intervention], full_vocab: bool = False) -> torch.Tensor:
        if not self.parts.reentry_exact:
            assert self.model is not None, "full-forward scoring needs the model"
            ids = self.main.samples[i].input_ids
            return score_full_forwards(self.model, ids, ivs, self.words, self.scope, full_vocab)
        if self.scope == "answer":
            return score_interventions(self.parts, self.main.states[i], ivs, self.words, full_vocab)  # type: ignore[index]
        if self._last is None or self._last[0] != i:
            assert self.model is not None, "the all-positions scope needs the model"
            self._last = (i, record_full(self.model, self.parts, self.main.samples[i].input_ids))
        return score_interventions_all_positions(self.parts, self._last[1], ivs, self.words, full_vocab)


def run_steering(
    parts: ModelParts,
    main: SampleSet,
    words: AnswerWords,
    cfg: SteerConfig,
    extra: SampleSet | None = None,
    model: nn.Module | None = None,
) -> SteerResult:
    """`main` must hold resumable states (run_samples(keep_states=True)); `extra` adds training data only.
    `model` is needed for cfg.scope == "all" (each sample's full prompt is recorded once per use)."""
    if main.states is None and cfg.scope == "answer" and parts.reentry_exact:
        raise ValueError("run_steering needs SampleSet.states (run_samples with keep_states=True)")
    layers = _check(cfg, parts)
    if (cfg.scope == "all" or not parts.reentry_exact) and model is None:
        raise ValueError("the all-positions scope, and models without exact re-entry, need the model")
    score = _Scorer(parts, main, words, cfg.scope, model)
    groups = [s.record.group for s in main.samples]
    folds = cross_fit(groups, cfg.k_folds, cfg.seed, labels=main.labels.tolist())
    result = SteerResult(folds=folds)
    settings = cfg.settings()
    configs = [(layer, m, s) for layer in layers for m in cfg.methods for s in settings]
    gen = torch.Generator().manual_seed(cfg.seed)
    with progress_bar("steering: validation sweep and test", total=len(main.samples) * 2) as advance:
        for f, (train, val, test) in enumerate(folds):
            assert_no_leak(groups, train, val, test)
            x, recs = training_set(main, extra, train, np.concatenate([val, test]))
            dirs = fit_per_cwe(x, recs, layers, cfg.methods) if cfg.per_cwe else {POOLED: fit_directions(x, recs, layers, cfg.methods)}
            for i in val:
                own = dirs.get(main.samples[i].record.cwe, dirs[POOLED])  # per CWE, pooled as fallback
                ivs = [intervention(own[(layer, m)], s, cfg.strength_unit) for layer, m, s in configs]
                scores = score(int(i), ivs)
                for (layer, m, s), sc in zip(configs, scores.tolist()):
                    result.sweep.append(
                        dict(fold=f, index=int(i), id=main.samples[i].record.id, layer=layer, method=m,
                             operator=s.operator, alpha=s.alpha, score=sc, vector_cwe=own[(layer, m)].cwe)
                    )
                advance(1)
            choice = _choose(result.sweep, f, main, val, cfg)
            result.choices.append(choice)
            chosen = {cwe: d[(choice.layer, choice.method)] for cwe, d in dirs.items()}
            result.directions.append(chosen)
            result.test += _test_rows(score, main, chosen, choice, test, cfg, gen)
            advance(len(test))
    result.test.sort(key=lambda r: r["index"])
    return result


def _test_rows(
    score: _Scorer, main: SampleSet, chosen: dict[str, Direction], choice: Choice,
    test: np.ndarray, cfg: SteerConfig, gen: torch.Generator,
) -> list[dict]:
    opposite = Setting(choice.setting.operator, -choice.setting.alpha)
    rows = []
    for i in test:
        rec = main.samples[i].record
        direction = chosen.get(rec.cwe, chosen[POOLED])
        randoms = [random_like(direction, gen) for _ in range(cfg.n_random)]
        ivs = [intervention(direction, choice.setting, cfg.strength_unit),
               intervention(direction, opposite, cfg.strength_unit)]
        ivs += [intervention(r, choice.setting, cfg.strength_unit) for r in randoms]
        scores = score(int(i), ivs).tolist()
        # KL(unsteered || steered) of the whole next-token distribution: what the edit costs beyond yes/no.
        # The unsteered row goes through the same re-entry, so both sides of the KL share one code path.
        full = score(int(i), [_identity(direction), ivs[0], *ivs[2:3]], full_vocab=True).log_softmax(-1)
        base_logp, steered_logp = full[0], full[1:]
        kls = (base_logp.exp() * (base_logp - steered_logp)).sum(-1).tolist()
        rows.append(
            dict(index=int(i), id=rec.id, fold=choice.fold, cwe=rec.cwe, label=rec.label, group=rec.group,
                 pair_id=rec.pair_id, config=choice.label(), vector_cwe=direction.cwe, baseline=float(main.scores[i]),
                 steered=scores[0], opposite=scores[1], random=scores[2:], kl_answer=kls[0],
                 kl_answer_random=kls[1] if randoms else float("nan"))
        )
    return rows
