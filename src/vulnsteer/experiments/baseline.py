"""The detection baseline: how the unsteered model does, read two ways (answer score and generated text),
per CWE with bootstrap intervals, beside what published LLMs answered on the same files."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

from vulnsteer.activations.memo import active_memo
from vulnsteer.activations.scoring import verdict
from vulnsteer.data.published import load_published, published_missing, published_table
from vulnsteer.errors import DataError
from vulnsteer.evaluation.generation import Generation, can_decode_from_passes, generate_answers, generate_from_passes
from vulnsteer.evaluation.metrics import MetricWithCI
from vulnsteer.evaluation.predictions import Predictions, per_cwe
from vulnsteer.evaluation.stored_answers import answer_key, stored_answers
from vulnsteer.experiments.baseline_config import BaselineConfig
from vulnsteer.experiments.coverage import FileKey, GeneratedCounts, KeptCounts, generation_sample
from vulnsteer.experiments.run_folder import schema
from vulnsteer.experiments.run_folder.run_dir import RunDir
from vulnsteer.experiments.templates import write_template_table
from vulnsteer.options import LongFiles
from vulnsteer.progress import log
from vulnsteer.prompting.context import Context
from vulnsteer.prompting.samples import Sample, SampleSet, build_samples, run_samples
from vulnsteer.prompting.windows import FileAnswer, flatten, pool_generations, regroup


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
    preds = Predictions.of(
        [r["label"] for r in kept], [r[score_key] if score_key else float("nan") for r in kept],
        [r["pair_id"] for r in kept], [r["group"] for r in kept], [r["cwe"] for r in kept],
        verdicts=[r[verdict_key] for r in kept],
    )
    return as_triples(per_cwe(preds, n_boot=n_boot, seed=seed))


def published_summary(root: Path, template: str, subsets: Sequence[str], cwes: Sequence[str] | None = None) -> dict | None:
    """Published LLMs' answers for this template on the first subset they cover, all studies merged; with
    `cwes`, on those CWEs' files only, so their "all" row covers the same files as ours."""
    preds = [p for p in load_published(root) if cwes is None or p.cwe in cwes]
    for subset in subsets:
        studies = sorted({p.study for p in preds if p.prompt == template and p.subset == subset})
        models: dict[str, dict] = {}
        for study in studies:
            for model, table in published_table(preds, study, template, subset).items():
                models[model if model not in models else f"{model} ({study})"] = table
        if models:
            return {"study": "+".join(studies), "prompt": template, "subset": subset, "models": models}
    return None


def _row(s: Sample, score: float | None, answer: FileAnswer | None) -> dict:
    r = s.record
    skipped = score is None
    return dict(
        id=r.id, subset=r.subset, cwe=r.cwe, language=r.language, label=r.label, group=r.group,
        pair_id=r.pair_id, flags=list(r.flags), template=s.template_id,
        n_tokens=sum(int(w.input_ids.shape[1]) for w in s.windows), n_windows=len(s.windows),
        truncated=s.fit.truncated, skipped=skipped, skipped_with_twin=s.fit.with_twin,
        score=float("nan") if score is None else score,
        score_verdict=None if score is None else verdict(score),
        generation=None if answer is None else answer.text,
        generation_verdict=None if answer is None else answer.verdict,
        generation_tokens=None if answer is None else answer.n_new_tokens,
        hit_limit=None if answer is None else answer.hit_limit,
    )


def sample_rows(sset: SampleSet, answers: Sequence[FileAnswer | None] | None, order: Sequence[str]) -> list[dict]:
    """One row per record in `order` (record ids): evaluated samples with their readings (no generated answer
    for a file outside the --generate-sample sample), skipped ones marked."""
    rows = {s.record.id: _row(s, float(sset.scores[i]), None if answers is None else answers[i])
            for i, s in enumerate(sset.samples)}
    rows.update({s.record.id: _row(s, None, None) for s in sset.skipped})
    return [rows[rid] for rid in order if rid in rows]


def generate_files(ctx: Context, cfg: BaselineConfig, sset: SampleSet) -> list[FileAnswer | None]:
    """Each sample's generated answer (None outside the --generate-sample sample): every window generated,
    pooled per file (prompting/windows.py)."""
    if cfg.generate_sample is not None:
        keys = [FileKey(s.record.id, s.record.label, s.record.pair_id) for s in sset.samples]
        drawn = generation_sample(keys, cfg.generate_sample, cfg.seed)
        idx = [i for i, s in enumerate(sset.samples) if s.record.id in drawn]
        answers: list[FileAnswer | None] = [None] * len(sset.samples)
        for i, a in zip(idx, _generate(ctx, cfg, sset.subset(idx))):
            answers[i] = a
        return answers
    return list(_generate(ctx, cfg, sset))


def _generate(ctx: Context, cfg: BaselineConfig, sset: SampleSet) -> list[FileAnswer]:
    """Inside `shared_passes` (a study), a window another cell already answered is not decoded again; an
    answer a run before stored in the cache is read (evaluation/stored_answers.py), and its passes not run."""
    windows, sizes = flatten([s.windows for s in sset.samples])
    where = [(j, k) for j, n in enumerate(sizes) for k in range(n)]  # (sample, window) of each row
    ids = [w.input_ids for w in windows]
    memo, lm = active_memo(), ctx.loaded
    keys = [(lm.source_hash, lm.dtype, lm.device, w.prompt, cfg.max_new_tokens) for w in windows]
    known: list[Generation | None] = [memo.answer(k) if memo is not None else None for k in keys]
    missing = [i for i, g in enumerate(known) if g is None]
    stored = sset.results
    disk = [answer_key(sset.keys[where[i][0]][where[i][1]], cfg.max_new_tokens) if stored else "" for i in missing]

    def decode(todo: list[int]) -> list[Generation]:
        rows = [missing[t] for t in todo]
        states = [sset.states[where[i][0]][where[i][1]] for i in rows] if sset.states is not None else []
        if len(states) == len(rows) and can_decode_from_passes(states):
            return generate_from_passes(lm.model, lm.tokenizer, states, [ids[i] for i in rows],
                                        max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size)
        # no reusable prefix caches (e.g. an unusual cache layout): encode the prompts again
        return generate_answers(lm.model, lm.tokenizer, [windows[i].prompt for i in rows],
                                max_new_tokens=cfg.max_new_tokens, batch_size=min(cfg.batch_size, 8))

    new = stored_answers(stored, disk, decode) if missing else []
    for i, g in zip(missing, new):
        known[i] = g
        if memo is not None:
            memo.keep_answer(keys[i], g)
    answered = [g for g in known if g is not None]
    assert len(answered) == len(known)
    return [pool_generations(g, s.windows) for g, s in zip(regroup(answered, sizes), sset.samples)]


def long_file_notes(rows: Sequence[dict], cfg: BaselineConfig) -> list[str]:
    """What the long-file policy did, each note naming it, for config.json's notes (the report shows them)."""
    budget, n, policy = cfg.max_code_tokens, len(rows), f"--long-files {cfg.long_files.value}"
    windowed = [r["n_windows"] for r in rows if r["n_windows"] > 1]
    # diff-centred centres on the lines that differ from the file's twin; a file without one keeps its head
    paired = {r["pair_id"] for r in rows if r["pair_id"] is not None and r["label"] == 1} & {
        r["pair_id"] for r in rows if r["pair_id"] is not None and r["label"] == 0}
    cut = sum(bool(r["truncated"]) and r["pair_id"] in paired for r in rows)
    head = sum(bool(r["truncated"]) and r["pair_id"] not in paired for r in rows)
    skipped = [r["id"] for r in rows if r["skipped"]]
    notes = []
    if windowed:
        notes.append(f"{policy}: {len(windowed)} of {n} files were longer than {budget} code tokens and were read "
                     f"in windows of whole lines ({sum(windowed)} windows, at most {max(windowed)} per file); a "
                     "file's answer score is the maximum over its windows, its residuals the mean, its generated "
                     "verdict 'yes' if any window says yes")
    if cut:
        notes.append(f"{policy}: {cut} of {n} files were longer than {budget} code tokens and were cut to one "
                     "window of whole lines around the lines that differ from their vulnerable/patched twin: that "
                     "window uses knowledge of where the change is, which a user scanning unknown code does not have")
    if head:
        notes.append(f"{policy}: {head} of {n} files were longer than {budget} code tokens and have no "
                     "vulnerable/patched twin in the data, so there was no change to centre on: they were cut to "
                     "their first lines (the head of the file), and code past that was not read")
    if skipped:
        why = ("were longer than" if cfg.long_files in (LongFiles.SKIP, LongFiles.SKIP_PAIRS)
               else "have a line that, with the omission comments, alone exceeds")
        alone = [r["id"] for r in rows if r["skipped"] and not r.get("skipped_with_twin")]
        notes.append(f"{policy}: {len(alone)} of {n} files {why} {budget} code tokens and were skipped: "
                     f"{', '.join(alone[:5])}{' ...' if len(alone) > 5 else ''}")
        if cfg.long_files is LongFiles.SKIP_PAIRS:
            notes.append(f"{policy}: {KeptCounts.of(rows).text()}")
    return notes


def check_kept(rows: Sequence[dict], cfg: BaselineConfig, need_both: bool) -> None:
    """Refuse, saying why, when the long-file policy skipped every file (or, where probes and steering follow,
    every file of one label): later stages would fail on empty or one-label data with no hint of the cause."""
    kept = [r for r in rows if not r["skipped"]]
    labels = {r["label"] for r in kept}
    if kept and (len(labels) == 2 or not need_both):
        return
    n_skipped = len(rows) - len(kept)
    why = (f"longer than --max-code-tokens {cfg.max_code_tokens}" if cfg.long_files is LongFiles.SKIP
           else f"with a line that alone exceeds --max-code-tokens {cfg.max_code_tokens}")
    what = (f"every one of the {len(rows)} files" if not kept else
            f"{n_skipped} of {len(rows)} files, every {'secure' if labels == {1} else 'vulnerable'} one,")
    raise DataError(f"--long-files {cfg.long_files.value} skipped {what} as {why}; raise --max-code-tokens"
                    + (" or use --long-files windows" if cfg.long_files is LongFiles.SKIP else ""))


def run_baseline(
    ctx: Context, cfg: BaselineConfig, run: RunDir, keep_states: bool = False, need_passes: bool = True
) -> tuple[SampleSet | None, list[dict]]:
    """Score (and optionally generate for) every record; writes baseline/* and published.json into `run`.

    In a resumed run whose baseline finished, its files are reused (generations included); the forward
    passes run again only when `need_passes` (a later stage needs the residuals or the KV caches, which
    are not kept on disk)."""
    t0 = time.time()
    samples = build_samples(
        ctx.records, ctx.loaded, cfg.template, ctx.cwe_names, ctx.data_root, cfg.max_code_tokens, cfg.long_files
    )
    if run.is_done("baseline"):
        rows = [json.loads(line) for line in (run.path / schema.BASELINE_SAMPLES).read_text().splitlines() if line]
        log(f"baseline: reused {len(rows)} scored files and their generations from the interrupted run"
            + ("; forward passes run again for the later stages" if need_passes else ""))
        if not need_passes:
            return None, rows
        again = run_samples(samples, ctx.loaded, ctx.words, ctx.cache, keep_states=keep_states,
                            description="baseline passes (for the later stages)")
        # Its own stage: the interrupted run's baseline_forward is kept, and the cell's wall time stays the
        # sum of its stages.
        run.stage("baseline_forward_again", time.time() - t0)
        return again, rows
    # Generation decodes on top of the passes' prefix caches, so keep them when generating.
    keep = keep_states or cfg.generate
    sset = run_samples(samples, ctx.loaded, ctx.words, ctx.cache, keep_states=keep, description="baseline passes")
    run.stage("baseline_forward", time.time() - t0)
    answers = None
    if cfg.generate and sset.samples:
        t0 = time.time()
        answers = generate_files(ctx, cfg, sset)
        run.stage("baseline_generation", time.time() - t0)
    rows = sample_rows(sset, answers, [r.id for r in ctx.records])
    check_kept(rows, cfg, need_both=need_passes)
    run.write_jsonl(schema.BASELINE_SAMPLES, rows)
    summary = {"score": summarise(rows, "score", "score_verdict", cfg.n_boot, cfg.seed)}
    if answers is not None:
        summary["generation"] = summarise(rows, None, "generation_verdict", cfg.n_boot, cfg.seed)
    run.write_json(schema.BASELINE_SUMMARY, summary)
    run.write_csv(schema.BASELINE_SUMMARY_CSV, [
        dict(reading=reading, cwe=cwe, metric=m, value=v[0], low=v[1], high=v[2])
        for reading, table in summary.items() for cwe, ms in table.items() for m, v in ms.items()
    ])
    published = published_summary(ctx.data_root, cfg.template, cfg.subsets, cfg.cwes)
    if published is not None:
        run.write_json(schema.PUBLISHED, published)
    elif (why := published_missing(ctx.data_root)) is not None:
        run.note(why)
    for note in long_file_notes(rows, cfg):
        run.note(note)
    if answers is not None and cfg.generate_sample is not None:
        run.note(GeneratedCounts.of(rows, cfg.generate_sample).text())
    if cfg.all_templates:
        write_template_table(ctx, cfg, run)
    run.done("baseline", [rel for rel in (schema.BASELINE_SAMPLES, schema.BASELINE_SUMMARY, schema.BASELINE_SUMMARY_CSV,
                                          schema.PUBLISHED, schema.BASELINE_TEMPLATES) if (run.path / rel).is_file()])
    return sset, rows
