"""The detection baseline: how the unsteered model does, read two ways (answer score and generated text),
per CWE with bootstrap intervals, beside what published LLMs answered on the same files."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vulnsteer.data.published import load_published, published_table
from vulnsteer.evaluation.generation import Generation, can_decode_from_passes, generate_answers, generate_from_passes
from vulnsteer.evaluation.metrics import MetricWithCI, per_cwe
from vulnsteer.evaluation.parser import parse_answer
from vulnsteer.evaluation.scoring import verdict
from vulnsteer.experiments.context import Context, RunDir
from vulnsteer.experiments.samples import SampleSet, build_samples, run_samples


@dataclass(frozen=True)
class BaselineConfig:
    subsets: tuple[str, ...] = ("hand-crafted",)
    cwes: tuple[str, ...] | None = None
    template: str = "S1"
    generate: bool = True
    max_new_tokens: int = 256
    batch_size: int = 48  # prompts decoded together; finished answers leave the batch as they stop
    max_code_tokens: int = 1536
    long_files: str = "truncate"
    n_boot: int = 1000
    seed: int = 0


def as_triples(table: dict[str, dict[str, MetricWithCI]]) -> dict[str, dict[str, list[float]]]:
    return {cwe: {k: [m.value, m.low, m.high] for k, m in ms.items()} for cwe, ms in table.items()}


def summarise(rows: Sequence[dict], score_key: str | None, verdict_key: str, n_boot: int, seed: int) -> dict:
    """Per-CWE metrics with intervals for the rows that were evaluated (skipped files left out).

    score_key None: the reading has no continuous score (generated text), so AUROC and pair ranking are NaN
    rather than borrowed from another reading.
    """
    kept = [r for r in rows if not r.get("skipped") and r.get(verdict_key) is not None]
    if not kept:
        return {}
    table = per_cwe(
        [r["label"] for r in kept], [r[score_key] if score_key else float("nan") for r in kept], [r[verdict_key] for r in kept],
        [r["pair_id"] for r in kept], [r["group"] for r in kept], [r["cwe"] for r in kept], n_boot=n_boot, seed=seed,
    )
    return as_triples(table)


def published_summary(root: Path, template: str, subsets: Sequence[str]) -> dict | None:
    """Published LLMs' answers for this template on the first subset they cover, all studies merged."""
    preds = load_published(root)
    for subset in subsets:
        studies = sorted({p.study for p in preds if p.prompt == template and p.subset == subset})
        models: dict[str, dict] = {}
        for study in studies:
            for model, table in published_table(preds, study, template, subset).items():
                models[model if model not in models else f"{model} ({study})"] = table
        if models:
            return {"study": "+".join(studies), "prompt": template, "subset": subset, "models": models}
    return None


def sample_rows(sset: SampleSet, generations: Sequence[Generation] | None) -> list[dict]:
    rows = []
    for i, s in enumerate(sset.samples):
        r = s.record
        score = float(sset.scores[i])
        g = generations[i] if generations is not None else None
        rows.append(dict(
            id=r.id, subset=r.subset, cwe=r.cwe, language=r.language, label=r.label, group=r.group,
            pair_id=r.pair_id, flags=list(r.flags), template=s.template_id, n_tokens=int(s.input_ids.shape[1]),
            truncated=s.fit.truncated, skipped=s.fit.skipped, score=score,
            score_verdict=None if s.fit.skipped else verdict(score),
            generation=None if g is None else g.text,
            generation_verdict=None if g is None else parse_answer(g.text),
            generation_tokens=None if g is None else g.n_new_tokens,
            hit_limit=None if g is None else g.hit_limit,
        ))
    return rows


def run_baseline(ctx: Context, cfg: BaselineConfig, run: RunDir, keep_states: bool = False) -> tuple[SampleSet, list[dict]]:
    """Score (and optionally generate for) every record; writes baseline/* and published.json into `run`."""
    t0 = time.time()
    samples = build_samples(
        ctx.records, ctx.loaded, cfg.template, ctx.cwe_names, ctx.data_root, cfg.max_code_tokens, cfg.long_files
    )
    # Generation decodes on top of the passes' prefix caches, so keep them when generating.
    keep = keep_states or cfg.generate
    sset = run_samples(samples, ctx.loaded, ctx.words, ctx.cache, keep_states=keep, description="baseline passes")
    run.stage("baseline_forward", time.time() - t0)
    generations = None
    if cfg.generate:
        t0 = time.time()
        live = [i for i, s in enumerate(samples) if not s.fit.skipped]
        states = [sset.states[i] for i in live] if sset.states is not None else []
        if states and can_decode_from_passes(states):
            texts = generate_from_passes(
                ctx.loaded.model, ctx.loaded.tokenizer, states, [samples[i].input_ids for i in live],
                max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size,
            )
        else:  # no reusable prefix caches (e.g. an unusual cache layout): encode the prompts again
            texts = generate_answers(
                ctx.loaded.model, ctx.loaded.tokenizer, [samples[i].prompt for i in live],
                max_new_tokens=cfg.max_new_tokens, batch_size=min(cfg.batch_size, 8),
            )
        by_index = dict(zip(live, texts))
        generations = [by_index.get(i, Generation("", 0, False)) for i in range(len(samples))]
        run.stage("baseline_generation", time.time() - t0)
    rows = sample_rows(sset, generations)
    if generations is not None:
        for row, s in zip(rows, samples):
            if s.fit.skipped:
                row.update(generation=None, generation_verdict=None, generation_tokens=None, hit_limit=None)
    run.write_jsonl("baseline/samples.jsonl", rows)
    summary = {"score": summarise(rows, "score", "score_verdict", cfg.n_boot, cfg.seed)}
    if generations is not None:
        summary["generation"] = summarise(rows, None, "generation_verdict", cfg.n_boot, cfg.seed)
    run.write_json("baseline/summary.json", summary)
    run.write_csv("baseline/summary.csv", [
        dict(reading=reading, cwe=cwe, metric=m, value=v[0], low=v[1], high=v[2])
        for reading, table in summary.items() for cwe, ms in table.items() for m, v in ms.items()
    ])
    published = published_summary(ctx.data_root, cfg.template, cfg.subsets)
    if published is not None:
        run.write_json("published.json", published)
    return sset, rows
