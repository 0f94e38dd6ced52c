"""`vulnsteer run`: baseline, probes and steering on one model and data set, then the report."""

from __future__ import annotations

import json
import time
from dataclasses import asdict

import numpy as np
import torch

from vulnsteer.experiments import schema
from vulnsteer.evaluation.fluency import code_nll_many
from vulnsteer.evaluation.generation import can_decode_from_passes, generate_answers, generate_from_passes
from vulnsteer.activations.scoring import verdict
from vulnsteer.evaluation.parser import parse_answer
from vulnsteer.experiments.baseline import run_baseline
from vulnsteer.experiments.config import RunConfig
from vulnsteer.data.load import load_records
from vulnsteer.experiments.context import Context
from vulnsteer.experiments.run_folder import RunDir
from vulnsteer.evaluation.splits import TransferSplit
from vulnsteer.experiments.probe import ProbeCurve, calibrated_thresholds, crossfit_probe, probe_curve
from vulnsteer.experiments.samples import SampleSet, build_samples, run_samples
from vulnsteer.options import LongFiles, SweepScope, Train
from vulnsteer.vectors.operators import Intervention
from vulnsteer.experiments.steer import SteerResult, run_steering, with_controls
from vulnsteer.experiments.transfer import Transfer, prepare_transfer, transfer_probe_curve
from vulnsteer.experiments.vectors_out import save_chosen_vectors
from vulnsteer.experiments.summary import (
    bias_only, condition_metrics, curves, deltas, flips, steered_minus_random, sweep_summary, verdict_text,
)
from vulnsteer.experiments.checkpoint import RunFoldStore
from vulnsteer.progress import log, progress_bar
from vulnsteer.vectors.hooks import steer
from vulnsteer.vectors.training import random_like

def extra_training(ctx: Context, cfg: RunConfig, main: SampleSet) -> SampleSet | None:
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
    samples = build_samples(records, ctx.loaded, cfg.baseline.template, ctx.cwe_names, ctx.data_root,
                            cfg.baseline.max_code_tokens, LongFiles.SKIP)
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
        states = [st for i in idx if (st := (main.states or [])[i]) is not None]
        ids = [main.samples[i].input_ids for i in idx]
        prompts = [main.samples[i].prompt for i in idx]
        n = cfg.side_by_side_tokens
        cached = len(states) == len(idx) and can_decode_from_passes(states)  # no prefix caches where re-entry is inexact
        if cached:
            plain = generate_from_passes(model, tok, states, ids, n, len(idx), "side by side: unsteered")
        else:
            plain = generate_answers(model, tok, prompts, n, len(idx), "side by side: unsteered", sort_by_length=False)
        ivs = _chosen(result, 0, vector_cwe).interventions()
        if cfg.steer.scope is SweepScope.ANSWER and cached:
            steered = generate_from_passes(model, tok, states, ids, n, len(idx), "side by side: steered", ivs)
        else:  # the prompt encoded again, steered in the sweep's scope (rows kept in order for per-row lengths)
            lengths = torch.tensor([int(x.shape[1]) for x in ids])
            with steer(model, ivs, scope=cfg.steer.scope.value, prompt_len=lengths):
                steered = generate_answers(model, tok, prompts, n, len(idx), "side by side: steered", sort_by_length=False)
        rows += [
            dict(id=main.samples[i].record.id, cwe=main.samples[i].record.cwe, label=main.samples[i].record.label,
                 config=result.choices[0].label(), vector_cwe=vector_cwe, unsteered=a.text, steered=b.text,
                 unsteered_verdict=parse_answer(a.text), steered_verdict=parse_answer(b.text),
                 identical=a.text == b.text, score_verdict_flipped=i in flipped)
            for i, a, b in zip(idx, plain, steered)
        ]
    return rows


def _chosen(result: SteerResult, fold: int, vector_cwe: str, random: bool = False):
    """Fold `fold`'s chosen vector for `vector_cwe` (or a seeded random one like it)."""
    vector = result.vectors[fold][vector_cwe]
    return random_like(vector, torch.Generator().manual_seed(10_000 + fold)) if random else vector


def fluency(ctx: Context, main: SampleSet, result: SteerResult, cfg: RunConfig) -> dict:
    """Mean next-token NLL on held-out secure files' code: unsteered, steered (every position), random."""
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
    nan = float("nan")
    return {
        "nll_base": float(np.mean(base)) if base else nan,
        "nll_steered": float(np.mean(steered)) if steered else nan,
        "nll_random": float(np.mean(rand)) if rand else nan,
        "kl_answer_steered": float(np.mean([r.kl_answer for r in result.test])),
        "kl_answer_random": float(np.nanmean([r.kl_answer_random for r in result.test])),
        "n_files": len(picks),
    }


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
        t0 = time.time()
        curve = transfer_probe_curve(transfer, cfg.steer.seed) if transfer else probe_curve(main, seed=cfg.steer.seed)
        _probe_stage(curve, run, time.time() - t0)
        run.done("probe")
    if "steer" not in cfg.stages:
        return {}
    if "steer" not in todo:
        return dict(json.loads((run.path / schema.STEER_SUMMARY).read_text()))
    assert main is not None
    summary = _steer_stage(ctx, main, cfg, run, transfer.split if transfer else None)
    run.done("steer")
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


def _probe_stage(curve: ProbeCurve, run: RunDir, seconds: float) -> None:
    res = curve.result
    run.write_json(schema.PROBE_CURVE, {
        "layers": list(range(len(res.auroc))), "auroc": res.auroc.tolist(), "accuracy": res.accuracy.tolist(),
        "control_auroc_mean": curve.control.mean(0).tolist(), "control_auroc_max": curve.control.max(0).tolist(),
        "per_cwe_auroc": {k: v.tolist() for k, v in res.per_cwe_auroc.items()}, "best_layer": res.best_layer,
    })
    run.stage("probes", seconds)


def _steer_stage(ctx: Context, main: SampleSet, cfg: RunConfig, run: RunDir, split: TransferSplit | None) -> dict:
    t0 = time.time()
    extra = extra_training(ctx, cfg, main)
    run.stage("extra_training_passes", time.time() - t0)

    t0 = time.time()
    result = run_steering(ctx.loaded.parts, main, ctx.words, cfg.steer, extra, ctx.loaded.model, RunFoldStore(run),
                          split)
    probe = {r["index"]: (r["probe"], r["probe_layer"]) for r in crossfit_probe(main, result.folds, cfg.steer.seed)}
    calib = {r["index"]: r["calibrated"] for r in calibrated_thresholds(main, result.folds)}
    result.test = with_controls(result.test, probe, calib)
    labels = main.labels.tolist()
    pair_ids = [s.record.pair_id for s in main.samples]
    run.write_csv(schema.STEER_SWEEP, result.sweep)
    summ_rows = sweep_summary(result.sweep, labels, pair_ids)
    run.write_csv(schema.STEER_SWEEP_SUMMARY, summ_rows)
    run.write_json(schema.STEER_CHOICES, [
        dict(fold=c.fold, layer=c.layer, method=c.method.value, operator=c.operator.value, alpha=c.alpha,
             val_metrics=c.val_metrics) for c in result.choices
    ])
    run.write_jsonl(schema.STEER_TEST, [asdict(r) for r in result.test])
    save_chosen_vectors(ctx, run, cfg.baseline.template, result)
    run.write_json(schema.STEER_CURVES, curves(summ_rows))
    run.stage("steering_sweep", time.time() - t0)

    t0 = time.time()
    conds = condition_metrics(result.test, cfg.baseline.n_boot, cfg.baseline.seed)
    delta = deltas(result.test, cfg.baseline.n_boot, cfg.baseline.seed)
    bias = bias_only(delta)
    vs_random = steered_minus_random(result.test, cfg.baseline.n_boot, cfg.baseline.seed)
    summary = {"conditions": conds, "deltas": delta, "steered_minus_random": vs_random, "flips": flips(result.test),
               "bias_only": bias, "fluency": fluency(ctx, main, result, cfg),
               "verdict": verdict_text(conds, delta, bias, vs_random)}
    run.write_json(schema.STEER_SUMMARY, summary)
    run.stage("fluency_and_summary", time.time() - t0)

    t0 = time.time()
    run.write_jsonl(schema.STEER_GENERATIONS, side_by_side(ctx, main, result, cfg))
    run.stage("side_by_side_generation", time.time() - t0)
    return summary
