"""`--steer-template auto`: within each cross-fitting fold, steer under the prompt template whose UNSTEERED
answer score has the best balanced accuracy on that fold's validation samples (ties: the template listed
first in `data.prompts.TEMPLATES`, so S1 wins a tie with any other). Only validation samples are read, so the
test fold never influences which template it is tested under.

Cost: every template costs one forward pass per file before steering (an 18-fold baseline), and every
distinct chosen template its own steering sweep; hence auto is not the default.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from vulnsteer.data.prompts import TEMPLATES
from vulnsteer.errors import VulnsteerError
from vulnsteer.evaluation.metrics import detection_metrics
from vulnsteer.evaluation.splits import CrossFit, TransferSplit
from vulnsteer.experiments.config import AUTO_TEMPLATE, RunConfig
from vulnsteer.experiments.run_folder import schema
from vulnsteer.experiments.run_folder.run_dir import RunDir
from vulnsteer.experiments.steer_results import SteerResult
from vulnsteer.experiments.templates import TemplateScores, as_scores, score_templates
from vulnsteer.prompting.context import Context
from vulnsteer.prompting.samples import SampleSet


@dataclass(frozen=True)
class TemplateChoice:
    """The template one fold's validation samples picked, and every candidate's validation balanced accuracy."""

    fold: int
    template: str
    val_balanced_accuracy: dict[str, float]


def _order(template: str) -> int:
    return list(TEMPLATES).index(template) if template in TEMPLATES else len(TEMPLATES)


def choose_templates(scored: Sequence[TemplateScores], ids: Sequence[str],
                     folds: CrossFit | TransferSplit) -> list[TemplateChoice]:
    """Per fold, the template with the best validation balanced accuracy of its unsteered answer score.

    `ids` are the steering samples' record ids (fold indices point into them); a template that did not score
    every one of them (the long-file policy skipped other files) is not a candidate."""
    candidates = []
    for t in scored:
        where = {rid: i for i, rid in enumerate(t.ids)}
        if len(t.ids) == len(ids) and set(where) == set(ids):
            candidates.append((t, np.array([where[rid] for rid in ids], dtype=int)))
    if not candidates:
        raise VulnsteerError("--steer-template auto: no template scored every steering file; use --long-files "
                             "windows or name a template")
    choices = []
    for f, (_train, val, _test) in enumerate(folds):
        bacc = {}
        for t, order in candidates:
            p, idx = t.predictions, order[np.asarray(val, dtype=int)]
            m = detection_metrics([p.labels[i] for i in idx], [p.scores[i] for i in idx],
                                  [p.verdicts[i] for i in idx], [p.pair_ids[i] for i in idx])
            bacc[t.template] = m["balanced_accuracy"]
        best = max(bacc, key=lambda k: (bacc[k] if bacc[k] == bacc[k] else -1.0, -_order(k)))
        choices.append(TemplateChoice(f, best, bacc))
    return choices


def merge_results(parts: Sequence[SteerResult]) -> SteerResult:
    """One result from runs that each steered some of the same folds (one run per chosen template)."""
    merged = SteerResult(folds=parts[0].folds)
    by_fold = sorted(((c.fold, c, v) for p in parts for c, v in zip(p.choices, p.vectors)), key=lambda x: x[0])
    merged.choices = [c for _, c, _ in by_fold]
    merged.vectors = [v for _, _, v in by_fold]
    merged.sweep = sorted((row for p in parts for row in p.sweep), key=lambda r: r["fold"])
    merged.test = sorted((r for p in parts for r in p.test), key=lambda r: r.index)
    return merged


def fold_templates(ctx: Context, cfg: RunConfig, main: SampleSet, folds: CrossFit | TransferSplit,
                   run: RunDir) -> list[str]:
    """The template each fold steers under: the configured one, or with auto the validation choice (written to
    steer/templates.json with every candidate's validation balanced accuracy). `main` is the baseline's
    sample set; its scores are reused for the baseline's template."""
    fixed = cfg.steer.template or cfg.baseline.template
    if fixed != AUTO_TEMPLATE:
        return [fixed] * folds.k
    others = [t for t in TEMPLATES if t != cfg.baseline.template]
    scored, skipped = score_templates(ctx, [s.record for s in main.samples], cfg.baseline.max_code_tokens,
                                      cfg.baseline.long_files, others)
    choices = choose_templates([as_scores(cfg.baseline.template, main), *scored],
                               [s.record.id for s in main.samples], folds)
    run.write_json(schema.STEER_TEMPLATES, {"folds": [asdict(c) for c in choices],
                                            "skipped": [asdict(s) for s in skipped]})
    for s in skipped:
        run.note(f"--steer-template auto: template {s.template} was not a candidate: {s.reason}")
    return [c.template for c in choices]
