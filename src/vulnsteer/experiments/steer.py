"""The steering experiment: vectors fit on training folds, configuration chosen on a validation fold,
effect measured on a test fold never used for either, beside random-direction and opposite-sign controls.

Cross-fitting over scenario groups (fold f tests, fold f+1 validates, the rest trains) tests every
sample exactly once while keeping each test sample's scenario, its patched twin and its augmentations
out of both the vector and the choice of configuration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial

import numpy as np
import torch
from torch import nn

from vulnsteer.activations.scoring import AnswerWords
from vulnsteer.data.records import Record
from vulnsteer.evaluation.splits import TransferSplit, assert_no_leak, cross_fit
from vulnsteer.experiments.config import SteerConfig
from vulnsteer.experiments.search import (
    Config,
    config_metrics,
    n_stages,
    scored_validation,
    search_fold,
    val_rank,
)
from vulnsteer.experiments.steer_results import Choice, FoldResult, FoldStore, SteerResult, TestRow
from vulnsteer.model.parts import ModelParts
from vulnsteer.options import Method, Operator, Readout, StrengthUnit, SweepScope
from vulnsteer.progress import progress_bar
from vulnsteer.prompting.samples import SampleSet
from vulnsteer.prompting.scorer import SampleScorer, code_spans
from vulnsteer.prompting.windows import pool_readouts
from vulnsteer.vectors.operators import Intervention
from vulnsteer.vectors.steering_vector import SteeringVector
from vulnsteer.vectors.training import POOLED, fit_per_cwe, fit_vectors, random_like


def _choose(sweep: list[dict], fold: int, samples: SampleSet, val: np.ndarray, cfg: SteerConfig,
            operator: Operator | None = None) -> Choice:
    """The best configuration on the validation fold of those scored (of one `operator`'s when given)."""
    metrics = config_metrics(sweep, fold, samples.labels.tolist(), [s.record.pair_id for s in samples.samples],
                             val, cfg, operator)
    best: tuple | None = None
    for (layer, method, op, alpha), m in metrics.items():
        rank = val_rank(m, alpha, cfg.select)
        if best is None or rank > best[0]:
            best = (rank, Choice(fold, layer, Method(method), Operator(op), alpha, m))
    assert best is not None
    return best[1]


def training_set(
    main: SampleSet, extra: SampleSet | None, train: np.ndarray, held: np.ndarray, readout: Readout
) -> tuple[torch.Tensor, list[Record]]:
    """Residuals (read at `readout`) and records a fold's vectors are fit on: its training samples, plus the
    extra (training-only) samples whose scenario group is not among the `held` (validation and test) samples'
    groups."""
    residuals, records = [main.readout(readout)[train]], [main.samples[i].record for i in train]
    if extra is not None:
        held_groups = {main.samples[i].record.group for i in held}
        keep = [i for i, s in enumerate(extra.samples) if s.record.group not in held_groups]
        residuals.append(extra.subset(keep).readout(readout))
        records += [extra.samples[i].record for i in keep]
    return torch.cat(residuals), records


def _identity(layer: int, d_model: int) -> Intervention:
    """A no-op edit at `layer`: the unsteered logits through the same re-entry path."""
    return Intervention(layer, Operator.ADD, torch.zeros(d_model), 0.0)


def _one(vector: SteeringVector, layer: int, op: Operator, alpha: float, unit: StrengthUnit) -> Intervention:
    return vector.at_layer(layer).interventions(alpha, op, unit)[0]


def run_steering(
    parts: ModelParts,
    main: SampleSet,
    words: AnswerWords,
    cfg: SteerConfig,
    readout: Readout,
    extra: SampleSet | None = None,
    model: nn.Module | None = None,
    store: FoldStore | None = None,
    only_folds: set[int] | None = None,
    split: TransferSplit | None = None,
) -> SteerResult:
    """`main` must hold resumable states (run_samples(keep_states=True)); `extra` adds training data only.
    Vectors are fit on the residuals read at `readout`.
    `model` is needed for the code and all scopes (each sample's full prompt is recorded once per use) and for
    models whose re-entry is not exact (`ModelParts.reentry_exact`: one full forward per configuration).
    `store` saves each finished fold and hands back folds an interrupted run finished (identical results:
    the random controls' generator is advanced past a reused fold's draws). `only_folds`: steer these folds
    only (the others' draws are skipped alike), as `--steer-template auto` does per chosen template. `split`
    replaces cross-fitting by one fixed (train, validation, test) split of `main` (a transfer run,
    experiments.transfer)."""
    if main.states is None and cfg.scope is SweepScope.ANSWER and parts.reentry_exact:
        raise ValueError("run_steering needs SampleSet.states (run_samples with keep_states=True)")
    layers = cfg.check_layers(parts.n_layers)
    if (cfg.scope.wide or not parts.reentry_exact) and model is None:
        raise ValueError("the code and all scopes, and models without exact re-entry, need the model")
    groups = [s.record.group for s in main.samples]
    folds = split if split is not None else cross_fit(groups, cfg.k_folds, cfg.seed, labels=main.labels.tolist())
    if cfg.scope is SweepScope.CODE:
        for _, val, test in folds:  # refuse before any fold runs, not halfway; training samples are never steered
            for i in (*val, *test):
                code_spans(main.samples[int(i)])
    score = SampleScorer(parts, main, words, cfg.scope, model)
    result = SteerResult(folds=folds)
    labels, pair_ids = main.labels.tolist(), [s.record.pair_id for s in main.samples]
    scored_val = [scored_validation(val, labels, cfg, f) for f, (_, val, _) in enumerate(folds)]
    work = [n_stages(cfg) * len(v) + len(test) for v, (_, _, test) in zip(scored_val, folds)]
    gen = torch.Generator().manual_seed(cfg.seed)
    with progress_bar("steering: validation sweep and test", total=sum(work)) as advance:
        for f, (train, val, test) in enumerate(folds):
            assert_no_leak(groups, train, val, test)
            if only_folds is not None and f not in only_folds:
                _skip_draws(gen, len(test) * cfg.n_random, parts.d_model)
                advance(work[f])
                continue
            done = store.load(f) if store is not None else None
            if done is not None:
                _skip_draws(gen, len(test) * cfg.n_random, parts.d_model)
                result.sweep += done.sweep
                result.choices.append(done.choice)
                result.vectors.append(done.vectors)
                result.test += done.test
                advance(work[f])
                continue
            n_sweep = len(result.sweep)
            x, recs = training_set(main, extra, train, np.concatenate([val, test]), readout)
            vecs = (fit_per_cwe(x, recs, layers, cfg.methods, position=readout) if cfg.per_cwe
                    else {POOLED: fit_vectors(x, recs, layers, cfg.methods, position=readout)})
            val = scored_val[f]  # the fold's validation samples the sweep scores (all unless --search-subsample)
            result.sweep += search_fold(cfg, layers, partial(_sweep, score, main, vecs, cfg, f, val, advance),
                                        partial(config_metrics, fold=f, labels=labels, pair_ids=pair_ids, val=val, cfg=cfg))
            choice = _choose(result.sweep, f, main, val, cfg)
            result.choices.append(choice)
            chosen = _applied(vecs, choice, cfg)
            result.vectors.append(chosen)
            rows = _test_rows(score, main, chosen, choice, test, cfg, gen)
            if any(op is Operator.AMPLIFY for op, _ in cfg.settings()):  # amplify on its own: its best on test
                amp = _choose(result.sweep, f, main, val, cfg, Operator.AMPLIFY)
                rows = _amplify_rows(score, rows, _applied(vecs, amp, cfg), amp)
            result.test += rows
            if store is not None:
                store.save(f, FoldResult(result.sweep[n_sweep:], choice, chosen, rows))
            advance(len(test))
    result.test.sort(key=lambda r: r.index)
    return result


def _sweep(score: SampleScorer, main: SampleSet, vecs: dict[str, dict[Method, SteeringVector]], cfg: SteerConfig,
           fold: int, val: np.ndarray, advance: Callable[[int], None], configs: list[Config]) -> list[dict]:
    """One sweep row per (validation sample, configuration): each sample steered by its CWE's vectors (pooled
    as fallback), all `configs` in one re-entry pass."""
    rows: list[dict] = []
    if not configs:
        advance(len(val))
        return rows
    per_key = {key: [_one(v[m], layer, op, a, cfg.strength_unit) for layer, m, op, a in configs]
               for key, v in vecs.items()}
    for i in val:
        key = main.samples[i].record.cwe if main.samples[i].record.cwe in vecs else POOLED
        own, scores = vecs[key], score(int(i), per_key[key])
        for (layer, m, op, a), sc in zip(configs, scores.tolist()):
            rows.append(dict(fold=fold, index=int(i), id=main.samples[i].record.id, layer=layer, method=m.value,
                             operator=op.value, alpha=a, score=sc, vector_cwe=own[m].provenance.cwe))
        advance(1)
    return rows


def _applied(vecs: dict[str, dict[Method, SteeringVector]], choice: Choice, cfg: SteerConfig) -> dict[str, SteeringVector]:
    """Per CWE (or pooled), the vector of `choice` at its layer, set to apply itself as chosen."""
    return {cwe: v[choice.method].at_layer(choice.layer).with_application(
                choice.operator, choice.alpha, cfg.strength_unit, cfg.scope.hook_scope)
            for cwe, v in vecs.items()}


def _amplify_rows(score: SampleScorer, rows: list[TestRow], chosen: dict[str, SteeringVector], choice: Choice) -> list[TestRow]:
    """`rows` with the amplify choice's test scores (scored apart from the other conditions, so theirs stay
    bit-identical to a run without it)."""
    return [replace(r, amplify=float(score(r.index, chosen.get(r.cwe, chosen[POOLED]).interventions())[0]),
                    amplify_config=choice.label()) for r in rows]


def _skip_draws(gen: torch.Generator, n: int, d_model: int) -> None:
    """Advance `gen` exactly as `n` random-control draws of width `d_model` would (see random_like)."""
    for _ in range(n):
        torch.randn(d_model, generator=gen)


def _test_rows(
    score: SampleScorer, main: SampleSet, chosen: dict[str, SteeringVector], choice: Choice,
    test: np.ndarray, cfg: SteerConfig, gen: torch.Generator,
) -> list[TestRow]:
    rows = []
    for i in test:
        rec = main.samples[i].record
        vector = chosen.get(rec.cwe, chosen[POOLED])
        randoms = [random_like(vector, gen) for _ in range(cfg.n_random)]
        ivs = [*vector.interventions(), *vector.interventions(alpha=-choice.alpha)]
        ivs += [iv for r in randoms for iv in r.interventions()]
        scores = score(int(i), ivs).tolist()
        # KL(unsteered || steered) of the whole next-token distribution: what the edit costs beyond yes/no.
        # The unsteered row goes through the same re-entry, so both sides of the KL share one code path.
        # A file read in several windows gets the mean of its windows' KLs: a cost, like the readouts, not a flag.
        kls = pool_readouts(score.kls(int(i), [_identity(choice.layer, vector.d_model), ivs[0], *ivs[2:3]])).tolist()
        rows.append(TestRow(
            index=int(i), id=rec.id, fold=choice.fold, cwe=rec.cwe, label=rec.label, group=rec.group,
            pair_id=rec.pair_id, config=choice.label(), vector_cwe=vector.provenance.cwe, baseline=float(main.scores[i]),
            steered=scores[0], opposite=scores[1], random=tuple(scores[2:]), kl_answer=kls[0],
            kl_answer_random=kls[1] if randoms else float("nan"),
        ))
    return rows


def with_controls(rows: list[TestRow], probe: dict[int, tuple[float, int]], calibrated: dict[int, float]) -> list[TestRow]:
    """The test rows with the probe and calibrated-threshold controls filled in (by sample index)."""
    return [replace(r, probe=probe[r.index][0], probe_layer=probe[r.index][1], calibrated=calibrated[r.index])
            for r in rows]
