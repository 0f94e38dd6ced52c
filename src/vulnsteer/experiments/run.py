"""`vulnsteer run`: baseline, probes and steering on one model and data set, then the report."""

from __future__ import annotations

import json
import time
from dataclasses import asdict

import torch

from vulnsteer.activations.scoring import verdict
from vulnsteer.data.load import load_records
from vulnsteer.errors import VulnsteerError
from vulnsteer.evaluation.deltas import mean_ci
from vulnsteer.evaluation.fluency import code_nll_many
from vulnsteer.evaluation.generation import can_decode_from_passes, generate_answers, generate_from_passes
from vulnsteer.evaluation.probe_curve import PROBE_FOLDS
from vulnsteer.evaluation.splits import CrossFit, TransferSplit, cross_fit
from vulnsteer.experiments.baseline import run_baseline
from vulnsteer.experiments.conditional import (
    ConditionalResult,
    conditional_file,
    conditional_steering,
    with_conditional,
    with_conditional_text,
)
from vulnsteer.experiments.config import RunConfig
from vulnsteer.experiments.probe import calibrated_thresholds, crossfit_probe, curve_intervals, probe_curve
from vulnsteer.experiments.run_folder import schema
from vulnsteer.experiments.run_folder.checkpoint import RunFoldStore
from vulnsteer.experiments.run_folder.run_dir import RunDir
from vulnsteer.experiments.run_folder.vectors_out import save_chosen_vectors
from vulnsteer.experiments.steer import SteerResult, run_steering, with_controls
from vulnsteer.experiments.summary import (
    bias_only,
    condition_metrics,
    condition_selects,
    conditional_minus_random,
    curves,
    deltas,
    flips,
    steered_minus_random,
    strength_slopes,
    sweep_summary,
    verdict_text,
)
from vulnsteer.experiments.template_choice import fold_templates, merge_results
from vulnsteer.experiments.templates import template_samples
from vulnsteer.experiments.transfer import Transfer, prepare_transfer, transfer_probe_curve
from vulnsteer.options import LongFiles, SweepScope, Train
from vulnsteer.progress import log, progress_bar
from vulnsteer.prompting.context import Context
from vulnsteer.prompting.samples import SampleSet, build_samples, run_samples
from vulnsteer.prompting.scorer import code_spans
from vulnsteer.prompting.windows import flatten, pool_generations, regroup
from vulnsteer.vectors.hooks import steer
from vulnsteer.vectors.operators import Intervention
from vulnsteer.vectors.training import random_like


def _steering_samples(ctx: Context, cfg: RunConfig, main: SampleSet, template: str) -> SampleSet:
    """The baseline's files under another template, with the passes kept for the sweep; refused when the
    long-file policy kept other files (the folds are over the baseline's files)."""
    sset = template_samples(ctx, [s.record for s in main.samples], template, cfg.baseline.max_code_tokens,
                            cfg.baseline.long_files, keep_states=True)
    if [s.record.id for s in sset.samples] != [s.record.id for s in main.samples]:
        raise VulnsteerError(f"--steer-template {template}: --long-files {cfg.baseline.long_files.value} keeps other "
                             f"files under {template} than under {cfg.baseline.template}; use --long-files windows")
    return sset


def extra_training(ctx: Context, cfg: RunConfig, main: SampleSet, template: str) -> SampleSet | None:
    """Training-only samples: augmentations of the SecLLMHolmes scenarios and/or SVEN commits.

    Augmentations of a scenario under validation or test are dropped fold by fold (they share its group)."""
    names = []
    if Train.AUGMENTED in cfg.train:
        names += ["augmented-trivial", "augmented-non-trivial"]
    if Train.SVEN in cfg.train:
        names.append("sven")
    if not names:
        return None
    cwes = sorted({s.record.cwe for s in main.samples}) if Train.SVEN not in cfg.train else None
    records = load_records(ctx.data_root, names, cwes)
    seen = {s.record.sha256 for s in main.samples}
    records = [r for r in records if r.sha256 not in seen]  # byte-identical copies of test files add nothing
    # Long training files are left out (skip-pairs: with their twins, so SVEN's pairs stay whole and balanced).
    policy = LongFiles.SKIP_PAIRS if cfg.baseline.long_files is LongFiles.SKIP_PAIRS else LongFiles.SKIP
    samples = build_samples(records, ctx.loaded, template, ctx.cwe_names, ctx.data_root,
                            cfg.baseline.max_code_tokens, policy)
    return run_samples(samples, ctx.loaded, ctx.words, ctx.cache, description="training passes")


def side_by_side(ctx: Context, main: SampleSet, result: SteerResult, cfg: RunConfig) -> list[dict]:
    """Generated answers with and without steering for a few test files of fold 0 (its chosen configuration),
    half vulnerable, half secure, steered in the sweep's scope; files whose answer-score verdict steering
    flipped come first, since they are where steering did something worth reading."""
    test0 = sorted((r for r in result.test if r.fold == 0), key=lambda r: verdict(r.steered) == verdict(r.baseline))
    half = (cfg.n_side_by_side + 1) // 2
    picks = [r for r in test0 if r.label == 1][:half] + [r for r in test0 if r.label == 0][:half]
    flipped = {r.index for r in picks if verdict(r.steered) != verdict(r.baseline)}
    model, tok = ctx.loaded.model, ctx.loaded.tokenizer
    rows = []
    for vector_cwe in sorted({r.vector_cwe for r in picks}):
        idx = [r.index for r in picks if r.vector_cwe == vector_cwe]
        # Every window of a file is generated, as in the baseline; the rows are windows, pooled per file below.
        windows, sizes = flatten([main.samples[i].windows for i in idx])
        states, _ = flatten([main.states[i] for i in idx] if main.states is not None else [])
        ids, prompts = [w.input_ids for w in windows], [w.prompt for w in windows]
        n, rows_n = cfg.side_by_side_tokens, len(windows)
        cached = len(states) == rows_n and can_decode_from_passes(states)  # no prefix caches where re-entry is inexact
        if cached:
            plain = generate_from_passes(model, tok, states, ids, n, rows_n, "side by side: unsteered")
        else:
            plain = generate_answers(model, tok, prompts, n, rows_n, "side by side: unsteered", sort_by_length=False)
        ivs = _chosen(result, 0, vector_cwe).interventions()
        if cfg.steer.scope is SweepScope.ANSWER and cached:
            steered = generate_from_passes(model, tok, states, ids, n, rows_n, "side by side: steered", ivs)
        else:  # the prompt encoded again, steered in the sweep's scope (rows kept in order for per-row lengths)
            lengths = torch.tensor([int(x.shape[1]) for x in ids])
            # The code scope steers each window on its own code's tokens, as the sweep scored it.
            spans = (flatten([code_spans(main.samples[i]) for i in idx])[0] if cfg.steer.scope is SweepScope.CODE
                     else None)
            with steer(model, ivs, scope=cfg.steer.scope.hook_scope, prompt_len=lengths, span=spans):
                steered = generate_answers(model, tok, prompts, n, rows_n, "side by side: steered", sort_by_length=False)
        for i, a, b in zip(idx, regroup(plain, sizes), regroup(steered, sizes)):
            rec, own = main.samples[i].record, main.samples[i].windows
            before, after = pool_generations(a, own), pool_generations(b, own)
            rows.append(dict(id=rec.id, cwe=rec.cwe, label=rec.label, config=result.choices[0].label(),
                             vector_cwe=vector_cwe, unsteered=before.text, steered=after.text,
                             unsteered_verdict=before.verdict, steered_verdict=after.verdict,
                             identical=before.text == after.text, score_verdict_flipped=i in flipped))
    return rows


def _chosen(result: SteerResult, fold: int, vector_cwe: str, random: bool = False):
    """Fold `fold`'s chosen vector for `vector_cwe` (or a seeded random one like it)."""
    vector = result.vectors[fold][vector_cwe]
    return random_like(vector, torch.Generator().manual_seed(10_000 + fold)) if random else vector


def fluency(ctx: Context, main: SampleSet, result: SteerResult, cfg: RunConfig) -> dict:
    """Mean next-token NLL on held-out secure files' code: unsteered, steered (every position), random; and
    the KL at the answer over the test rows; each as [mean, low, high] with a bootstrap over scenario groups."""
    picks = [r for r in result.test if r.label == 0][: cfg.n_fluency]
    model, tok = ctx.loaded.model, ctx.loaded.tokenizer
    base, steered, rand = [], [], []
    with progress_bar("fluency cost", total=len(picks)) as advance:
        for r in picks:
            code = main.samples[r.index].record.code
            ivs: list[Intervention] = [
                _chosen(result, r.fold, r.vector_cwe, random).interventions()[0] for random in (False, True)
            ]
            nll_base, nll_steered, nll_random = code_nll_many(model, ctx.loaded.parts, tok, code, ivs)
            base.append(nll_base)
            steered.append(nll_steered)
            rand.append(nll_random)
            advance(1)

    def ci(values: list[float], groups: list[str]) -> list[float]:
        m = mean_ci(values, groups, cfg.baseline.n_boot, cfg.baseline.seed)
        return [m.value, m.low, m.high]

    files, tested = [r.group for r in picks], [r.group for r in result.test]
    return {
        "nll_base": ci(base, files), "nll_steered": ci(steered, files), "nll_random": ci(rand, files),
        "kl_answer_steered": ci([r.kl_answer for r in result.test], tested),
        "kl_answer_random": ci([r.kl_answer_random for r in result.test], tested),
        "n_files": len(picks),
    }


STEER_OUTPUTS = (schema.STEER_SWEEP, schema.STEER_SWEEP_SUMMARY, schema.STEER_CHOICES, schema.STEER_TEMPLATES,
                 schema.STEER_TEST, schema.STEER_CURVES, schema.STEER_SUMMARY, schema.STEER_GENERATIONS,
                 schema.STEER_CONDITIONAL)


def run_all(ctx: Context, cfg: RunConfig, run: RunDir) -> dict:
    """Baseline -> probes -> steering -> summary files. Returns steer/summary.json's content.
    With --fit-on (experiments.transfer) the baseline reads the test-on data and the later stages fit on
    the fit-on data; otherwise they cross-fit over the baseline's data."""
    note_architecture(ctx, run)
    todo = [s for s in cfg.stages if not run.is_done(s)]
    main, _rows = run_baseline(ctx, cfg.baseline, run, keep_states="steer" in todo, need_passes=bool(todo))
    for stage in cfg.stages:
        if stage not in todo:
            log(f"{stage}: reused from the interrupted run")
    transfer: Transfer | None = None
    if cfg.fit_on and todo:
        assert main is not None
        transfer = prepare_transfer(ctx, cfg, run, main, keep_states="steer" in todo)
        main = transfer.main
    if "probe" in todo:
        assert main is not None
        _probe_stage(main, cfg, run, transfer)
        run.done("probe", [schema.PROBE_CURVE])
    if "steer" not in cfg.stages:
        return {}
    if "steer" not in todo:
        return dict(json.loads((run.path / schema.STEER_SUMMARY).read_text()))
    assert main is not None
    summary = _steer_stage(ctx, main, cfg, run, transfer.split if transfer else None)
    run.done("steer", [rel for rel in STEER_OUTPUTS if (run.path / rel).is_file()])
    return summary


def note_architecture(ctx: Context, run: RunDir) -> None:
    """How the model's parts were found and whether steering re-enters the stack, in config.json and the log."""
    parts = ctx.loaded.parts
    run.config["architecture"] = {"model_type": parts.model_type, "n_layers": parts.n_layers,
                                  "d_model": parts.d_model, "found_by": parts.found_by,
                                  "reentry_exact": parts.reentry_exact, "reentry_note": parts.reentry_note}
    run.write_json(schema.CONFIG, run.config)
    if not parts.reentry_exact:
        log(f"note: {parts.model_type}: {parts.reentry_note}")


def _probe_stage(main: SampleSet, cfg: RunConfig, run: RunDir, transfer: Transfer | None) -> None:
    t0 = time.time()
    if transfer is not None:  # fit on the fit-on samples, scored (and its intervals drawn) on the test-on ones
        curve, scored = transfer_probe_curve(transfer, cfg.steer.seed, cfg.readout), transfer.test
    else:
        curve, scored = probe_curve(main, cfg.readout, cfg.steer.seed), main
    res = curve.result
    if 0 < curve.k < PROBE_FOLDS:
        run.note(f"probe curve: grouped {curve.k}-fold cross-validation, not {PROBE_FOLDS}-fold: the data has only "
                 f"{curve.k} scenario groups")
    run.write_json(schema.PROBE_CURVE, {
        "layers": list(range(len(res.auroc))), "auroc": res.auroc.tolist(), "accuracy": res.accuracy.tolist(),
        "control_auroc_mean": curve.control.mean(0).tolist(), "control_auroc_max": curve.control.max(0).tolist(),
        "per_cwe_auroc": {k: v.tolist() for k, v in res.per_cwe_auroc.items()}, "best_layer": res.best_layer,
        **curve_intervals(scored, res, cfg.baseline.n_boot, cfg.baseline.seed),
        "readout": cfg.readout.value, **({"k_folds": curve.k} if curve.k else {}),
    })
    run.stage("probes", time.time() - t0)


def _steer_stage(ctx: Context, main: SampleSet, cfg: RunConfig, run: RunDir, split: TransferSplit | None) -> dict:
    t0 = time.time()
    groups = [s.record.group for s in main.samples]
    folds: CrossFit | TransferSplit = split if split is not None else cross_fit(
        groups, cfg.steer.k_folds, cfg.steer.seed, labels=main.labels.tolist())
    plan = fold_templates(ctx, cfg, main, folds, run)
    run.stage("template_choice", time.time() - t0)

    t0 = time.time()
    parts: list[SteerResult] = []
    probe: dict[int, tuple[float, int]] = {}
    calib: dict[int, float] = {}
    conditional: list[ConditionalResult] = []
    for template in dict.fromkeys(plan):  # each chosen template steers its own folds, on its own prompts
        own = {f for f, t in enumerate(plan) if t == template}
        sset = main if template == cfg.baseline.template else _steering_samples(ctx, cfg, main, template)
        extra = extra_training(ctx, cfg, sset, template)
        part = run_steering(ctx.loaded.parts, sset, ctx.words, cfg.steer, cfg.readout, extra, ctx.loaded.model,
                            RunFoldStore(run), only_folds=own, split=split)
        probe |= {r["index"]: (r["probe"], r["probe_layer"])
                  for r in crossfit_probe(sset, folds, cfg.steer.seed, cfg.readout) if r["fold"] in own}
        calib |= {r["index"]: r["calibrated"] for r in calibrated_thresholds(sset, folds) if r["fold"] in own}
        if cfg.steer.conditional:
            conditional.append(conditional_steering(sset, part, cfg.steer.select, cfg.readout))
        if 0 in own:
            main = sset  # side by side generates under fold 0's template, from its kept passes
        parts.append(part)
    result = merge_results(parts)
    result.test = with_controls(result.test, probe, calib)
    cond = ConditionalResult.merge(conditional) if conditional else None
    if cond is not None:
        result.test = with_conditional(result.test, cond)
        run.write_json(schema.STEER_CONDITIONAL, conditional_file(cond))
    labels = main.labels.tolist()
    pair_ids = [s.record.pair_id for s in main.samples]
    run.write_csv(schema.STEER_SWEEP, result.sweep)
    summ_rows = sweep_summary(result.sweep, labels, pair_ids)
    run.write_csv(schema.STEER_SWEEP_SUMMARY, summ_rows)
    run.write_json(schema.STEER_CHOICES, [
        dict(fold=c.fold, template=plan[c.fold], layer=c.layer, method=c.method.value, operator=c.operator.value,
             alpha=c.alpha, val_metrics=c.val_metrics) for c in result.choices
    ])
    run.write_jsonl(schema.STEER_TEST, [asdict(r) for r in result.test])
    save_chosen_vectors(ctx, run, plan, result)
    run.write_json(schema.STEER_CURVES, curves(summ_rows))
    run.stage("steering_sweep", time.time() - t0)

    t0 = time.time()
    conds = condition_metrics(result.test, cfg.baseline.n_boot, cfg.baseline.seed)
    delta = deltas(result.test, cfg.baseline.n_boot, cfg.baseline.seed)
    bias = bias_only(delta)
    vs_random = steered_minus_random(result.test, cfg.baseline.n_boot, cfg.baseline.seed)
    summary = {"conditions": conds, "deltas": delta, "steered_minus_random": vs_random,
               "conditional_minus_random": conditional_minus_random(result.test, cfg.baseline.n_boot, cfg.baseline.seed),
               "flips": flips(result.test, cfg.baseline.n_boot, cfg.baseline.seed),
               "strength_slopes": strength_slopes(result.sweep, result.choices, labels),
               "condition_selects": condition_selects(result.test),
               "bias_only": bias, "fluency": fluency(ctx, main, result, cfg),
               "verdict": verdict_text(conds, delta, bias, vs_random)}
    run.write_json(schema.STEER_SUMMARY, summary)
    run.stage("fluency_and_summary", time.time() - t0)

    t0 = time.time()
    run.write_jsonl(schema.STEER_GENERATIONS, with_conditional_text(side_by_side(ctx, main, result, cfg), result.test))
    run.stage("side_by_side_generation", time.time() - t0)
    return summary
