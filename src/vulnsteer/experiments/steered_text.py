"""What the chosen vectors do to generated text: test files' answers with and without steering, side by side,
and the fluency cost (next-token NLL of held-out code and the KL at the answer)."""

from __future__ import annotations

import torch

from vulnsteer.activations.cache import result_key
from vulnsteer.activations.scoring import verdict
from vulnsteer.evaluation.deltas import mean_ci
from vulnsteer.evaluation.fluency import code_nll_many
from vulnsteer.evaluation.generation import Generation, can_decode_from_passes, generate_answers, generate_from_passes
from vulnsteer.evaluation.stored_answers import answer_key, stored_answers
from vulnsteer.experiments.config import RunConfig
from vulnsteer.experiments.steer_results import SteerResult
from vulnsteer.options import SweepScope
from vulnsteer.progress import progress_bar
from vulnsteer.prompting.context import Context
from vulnsteer.prompting.samples import SampleSet
from vulnsteer.prompting.scorer import code_spans
from vulnsteer.prompting.windows import flatten, pool_generations, regroup
from vulnsteer.vectors.hooks import steer
from vulnsteer.vectors.operators import Intervention, fingerprint
from vulnsteer.vectors.training import random_like


def side_by_side(ctx: Context, main: SampleSet, result: SteerResult, cfg: RunConfig) -> list[dict]:
    """Generated answers with and without steering for a few test files of fold 0 (its chosen configuration),
    half vulnerable, half secure, steered in the sweep's scope; files whose answer-score verdict steering
    flipped come first, since they are where steering did something worth reading."""
    test0 = sorted((r for r in result.test if r.fold == 0), key=lambda r: verdict(r.steered) == verdict(r.baseline))
    half = (cfg.n_side_by_side + 1) // 2
    picks = [r for r in test0 if r.label == 1][:half] + [r for r in test0 if r.label == 0][:half]
    flipped = {r.index for r in picks if verdict(r.steered) != verdict(r.baseline)}
    rows = []
    for vector_cwe in sorted({r.vector_cwe for r in picks}):
        idx = [r.index for r in picks if r.vector_cwe == vector_cwe]
        # Every window of a file is generated, as in the baseline; the rows are windows, pooled per file below.
        sizes = [len(main.samples[i].windows) for i in idx]
        plain, steered = _answers(ctx, main, idx, _chosen(result, 0, vector_cwe).interventions(), cfg)
        for i, a, b in zip(idx, regroup(plain, sizes), regroup(steered, sizes)):
            rec, own = main.samples[i].record, main.samples[i].windows
            before, after = pool_generations(a, own), pool_generations(b, own)
            rows.append(dict(id=rec.id, cwe=rec.cwe, label=rec.label, config=result.choices[0].label(),
                             vector_cwe=vector_cwe, unsteered=before.text, steered=after.text,
                             unsteered_verdict=before.verdict, steered_verdict=after.verdict,
                             identical=before.text == after.text, score_verdict_flipped=i in flipped))
    return rows


def _answers(ctx: Context, main: SampleSet, idx: list[int], ivs: list[Intervention],
             cfg: RunConfig) -> tuple[list[Generation], list[Generation]]:
    """Unsteered and steered answers of every window of samples `idx`: stored ones read
    (evaluation/stored_answers.py), the rest decoded from the passes' prefix caches where they can be, else
    from the prompt; the samples' passes run only if an answer is missing."""
    model, tok = ctx.loaded.model, ctx.loaded.tokenizer
    windows = flatten([main.samples[i].windows for i in idx])[0]
    ids, prompts = [w.input_ids for w in windows], [w.prompt for w in windows]
    n, scope = cfg.side_by_side_tokens, cfg.steer.scope
    stored = main.results
    wkeys = flatten([main.keys[i] for i in idx])[0] if stored else [""] * len(windows)

    def states() -> list:
        found = flatten([main.states[i] for i in idx])[0] if main.states is not None else []
        # no prefix caches where re-entry is inexact
        return found if len(found) == len(windows) and can_decode_from_passes(found) else []

    def unsteered(todo: list[int]) -> list[Generation]:
        st = states()
        if st:
            return generate_from_passes(model, tok, [st[k] for k in todo], [ids[k] for k in todo], n, len(todo),
                                        "side by side: unsteered")
        return generate_answers(model, tok, [prompts[k] for k in todo], n, len(todo), "side by side: unsteered",
                                sort_by_length=False)

    def steered(todo: list[int]) -> list[Generation]:
        st = states()
        if scope is SweepScope.ANSWER and st:
            return generate_from_passes(model, tok, [st[k] for k in todo], [ids[k] for k in todo], n, len(todo),
                                        "side by side: steered", ivs)
        # the prompt encoded again, steered in the sweep's scope (rows kept in order for per-row lengths)
        lengths = torch.tensor([int(ids[k].shape[1]) for k in todo])
        # The code scope steers each window on its own code's tokens, as the sweep scored it.
        spans = ([flatten([code_spans(main.samples[i]) for i in idx])[0][k] for k in todo]
                 if scope is SweepScope.CODE else None)
        with steer(model, ivs, scope=scope.hook_scope, prompt_len=lengths, span=spans):
            return generate_answers(model, tok, [prompts[k] for k in todo], n, len(todo), "side by side: steered",
                                    sort_by_length=False)

    return (stored_answers(stored, [answer_key(k, n) for k in wkeys], unsteered),
            stored_answers(stored, [answer_key(k, n, ivs, scope.value) for k in wkeys], steered))


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
            key = result_key("nll", ctx.loaded.source_hash, code, *fingerprint(ivs))
            found = ctx.cache.result(key) if ctx.cache is not None else None
            if found is not None and "nll" in found.tensors and found.tensors["nll"].numel() == 3:
                nll_base, nll_steered, nll_random = found.tensors["nll"].tolist()
            else:  # stored as float64, so a rerun reads back the very floats computed here
                nll_base, nll_steered, nll_random = code_nll_many(model, ctx.loaded.parts, tok, code, ivs)
                if ctx.cache is not None:
                    ctx.cache.keep_result(key, {"nll": torch.tensor([nll_base, nll_steered, nll_random],
                                                                    dtype=torch.float64)})
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
