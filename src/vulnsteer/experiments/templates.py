"""Every implemented prompt template on the same files, read by the unsteered answer score: the per-template
baseline table (`vulnsteer baseline --template all`) and the scores `--steer-template auto` chooses from.

Generation is left out here: a 256-token answer per file under each of the 18 templates costs about 18 times
the S1 baseline's generation, the dominant cost of a baseline; the answer score needs one forward pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vulnsteer.data.prompts import TEMPLATES
from vulnsteer.data.records import Record
from vulnsteer.errors import VulnsteerError
from vulnsteer.evaluation.metrics import metrics_with_ci
from vulnsteer.evaluation.predictions import Predictions
from vulnsteer.experiments.baseline_config import BaselineConfig
from vulnsteer.experiments.run_folder import schema
from vulnsteer.experiments.run_folder.run_dir import RunDir
from vulnsteer.options import LongFiles
from vulnsteer.prompting.context import Context
from vulnsteer.prompting.samples import SampleSet, build_samples, run_samples

READING = "score"


@dataclass(frozen=True)
class TemplateScores:
    """One template's unsteered answer scores on the files it could render (sample order of `records`)."""

    template: str
    ids: tuple[str, ...]
    predictions: Predictions


@dataclass(frozen=True)
class Skipped:
    """A template left out, and why (its few-shot examples or CWE definitions are missing, say)."""

    template: str
    reason: str


def template_samples(
    ctx: Context, records: Sequence[Record], template: str, max_code_tokens: int, long_files: LongFiles,
    keep_states: bool = False,
) -> SampleSet:
    """`records` rendered under `template` and run once each (unsteered)."""
    samples = build_samples(records, ctx.loaded, template, ctx.cwe_names, ctx.data_root, max_code_tokens, long_files)
    return run_samples(samples, ctx.loaded, ctx.words, ctx.cache, keep_states=keep_states,
                       description=f"baseline passes, template {template}")


def as_scores(template: str, sset: SampleSet) -> TemplateScores:
    recs = [s.record for s in sset.samples]
    preds = Predictions.of([r.label for r in recs], sset.scores.tolist(), [r.pair_id for r in recs],
                           [r.group for r in recs], [r.cwe for r in recs])
    return TemplateScores(template, tuple(r.id for r in recs), preds)


def score_templates(
    ctx: Context, records: Sequence[Record], max_code_tokens: int, long_files: LongFiles,
    templates: Sequence[str] = tuple(TEMPLATES),
) -> tuple[list[TemplateScores], list[Skipped]]:
    """Unsteered answer scores of `records` under each of `templates`; a template whose inputs are missing is
    skipped with the reason (its prompts cannot be built), not guessed at."""
    scored, skipped = [], []
    for template in templates:
        try:
            sset = template_samples(ctx, records, template, max_code_tokens, long_files)
        except VulnsteerError as exc:
            skipped.append(Skipped(template, str(exc)))
            continue
        if not sset.samples:
            skipped.append(Skipped(template, "every file was skipped by the long-file policy"))
            continue
        scored.append(as_scores(template, sset))
    return scored, skipped


def template_table(scored: Sequence[TemplateScores], skipped: Sequence[Skipped], n_boot: int, seed: int) -> dict:
    """baseline/templates.json: per template, metrics with 95% group-bootstrap intervals, and the skipped."""
    rows = []
    for t in scored:
        p = t.predictions
        m = metrics_with_ci(p.labels, p.scores, p.verdicts, p.pair_ids, p.groups, n_boot=n_boot, seed=seed)
        rows.append({"id": t.template, "description": TEMPLATES[t.template].description,
                     "upstream": TEMPLATES[t.template].upstream,
                     "metrics": {k: [v.value, v.low, v.high] for k, v in m.items()}})
    return {"reading": READING, "templates": rows,
            "skipped": [{"id": s.template, "reason": s.reason} for s in skipped]}


def write_template_table(ctx: Context, cfg: BaselineConfig, run: RunDir) -> None:
    """Score every implemented template on the baseline's files and write baseline/templates.json."""
    scored, skipped = score_templates(ctx, ctx.records, cfg.max_code_tokens, cfg.long_files)
    run.write_json(schema.BASELINE_TEMPLATES, template_table(scored, skipped, cfg.n_boot, cfg.seed))
    for s in skipped:
        run.note(f"template {s.template} left out of {schema.BASELINE_TEMPLATES}: {s.reason}")
