"""The report's sections on the steering experiment (steer/*.json): the held-out headline and its verdict,
whether steering carries the probe's signal, the paired comparisons, per CWE, the validation curves, fluency,
flips and the generations side by side; `report.sections` puts them in order with the other sections.
"""

from __future__ import annotations

from pathlib import Path

from vulnsteer.experiments.run_folder import schema
from vulnsteer.experiments.run_folder.reader import Run, readout_and_scope
from vulnsteer.report import plots
from vulnsteer.report.blocks import Block, Fig, Generation, Text, not_run_blocks
from vulnsteer.report.family import comparisons_data, count_sentence
from vulnsteer.report.links import failed_links
from vulnsteer.report.reading import transfer_lead, transfer_text
from vulnsteer.report.tables import CONDITIONS, TableData, conditional_data, fmt, fmt_ci, headline_data, per_cwe_data
from vulnsteer.report.verdicts import carries_signal, versus_random

MAX_GENERATIONS = 20


def headline(run: Run, figures: Path) -> list[Block]:
    summary = run.json(schema.STEER_SUMMARY)
    config = run.json(schema.CONFIG)
    lead = transfer_lead(config, run.json(schema.TRANSFER))
    if summary is None:
        return lead + not_run_blocks(schema.STEER_SUMMARY)
    blocks: list[Block] = [*lead, headline_data(summary, transfer_text(config))]
    blocks.append(Fig(plots.condition_bars_plot(summary, figures / "conditions.png"), "accuracy and AUROC by condition"))
    choices = run.json(schema.STEER_CHOICES)
    if choices:
        readout, scope = readout_and_scope(run)
        keys = ["fold", *(["template"] if any("template" in c for c in choices) else []),
                "layer", "method", "operator", "alpha"]
        table = TableData(f"Configuration chosen on each validation fold (vectors from the {readout} readout, "
                          f"{scope} scope steered)", [*keys, "val. balanced acc.", "val. AUROC"])
        table.note = ("Validation numbers chose the configuration (the best of many), so they carry no interval: "
                      "they are optimistic by construction; the held-out table above is the estimate.")
        for c in choices:
            val = c.get("val_metrics") or {}
            table.rows.append([str(c.get(k, "n/a")) for k in keys]
                              + [fmt(val.get("balanced_accuracy")), fmt(val.get("auroc"))])
        blocks.append(table)
    return blocks


def verdict(run: Run) -> list[Block]:
    summary = run.json(schema.STEER_SUMMARY)
    if summary is None:
        return not_run_blocks(schema.STEER_SUMMARY)
    blocks: list[Block] = [Text(str(summary.get("verdict") or "No verdict recorded."))]
    blocks += [Text(t) for t in versus_random(summary) + failed_links(summary)]
    blocks.append(Text(count_sentence(len(comparisons_data(summary).rows), summary)))
    if summary.get("bias_only", {}).get("steered"):
        blocks.append(Text("The steered condition is flagged bias only: its change is what shifting the yes/no "
                           "bias gives, not a better ranking of vulnerable over secure code."))
    if summary.get("steered_minus_random") is None:
        blocks.append(Text("Overlap of two intervals is a conservative comparison; this run has no paired "
                           "steered-minus-random interval."))
    return blocks


def carry(run: Run) -> list[Block]:
    summary = run.json(schema.STEER_SUMMARY)
    if summary is None:
        return not_run_blocks(schema.STEER_SUMMARY)
    blocks: list[Block] = [Text(t) for t in carries_signal(summary, run.jsonl(schema.STEER_GENERATIONS))]
    conditional = run.json(schema.STEER_CONDITIONAL)
    return blocks + ([conditional_data(conditional)] if conditional else [])


def comparisons(run: Run) -> list[Block]:
    summary = run.json(schema.STEER_SUMMARY)
    if summary is None:
        return not_run_blocks(schema.STEER_SUMMARY)
    table = comparisons_data(summary)
    return [Text(count_sentence(len(table.rows), summary)), table]


def per_cwe(run: Run) -> list[Block]:
    summary = run.json(schema.STEER_SUMMARY)
    if summary is None:
        return not_run_blocks(schema.STEER_SUMMARY)
    published = run.json(schema.PUBLISHED)
    blocks: list[Block] = [per_cwe_data(summary, published)]
    return blocks + ([] if published else [Text("No published LLM answers (published.json is not in this run folder).")])


def curves(run: Run, figures: Path) -> list[Block]:
    curves = run.json(schema.STEER_CURVES)
    if curves is None:
        return not_run_blocks(schema.STEER_CURVES)
    blocks: list[Block] = [Fig(plots.strength_curves_plot(curves, figures / "strength_curves.png"), "strength curves")]
    if curves.get("by_layer"):
        blocks.append(Fig(plots.layer_curves_plot(curves["by_layer"], figures / "layer_curves.png"), "layer curves"))
    return blocks + [Text("These curves are on validation folds (pooled); they chose the configuration and are "
                          "optimistic by construction. Judge the effect by the held-out table." + search_note(run))]


def search_note(run: Run) -> str:
    """What part of the grid the sweep scored, where not all of it (docs/STEERING.md, "Bounding the search")."""
    read = run.json(schema.CONFIG)
    steer = read.get("steer") if isinstance(read, dict) else None
    steer = steer if isinstance(steer, dict) else {}
    parts = ([f"--search {steer['search']}, top {steer.get('search_top')}"] if steer.get("search", "grid") != "grid" else [])
    parts += [f"--search-subsample {steer['search_subsample']}"] if steer.get("search_subsample") is not None else []
    return f" The sweep scored part of the grid ({'; '.join(parts)}): the curves show only what it scored." if parts else ""


def fluency(run: Run) -> list[Block]:
    summary = run.json(schema.STEER_SUMMARY)
    if summary is None or not summary.get("fluency"):
        return not_run_blocks("steer/summary.json fluency")
    f = summary["fluency"]
    scope = readout_and_scope(run)[1]
    table = TableData(f"Fluency cost ({f.get('n_files', 'n/a')} code files)", ["measure", "unsteered", "steered",
                                                                                "random control"])
    table.note = ("The NLL row steers every position of the code, the harshest case; the experiment steered "
                  + {"answer": "the answer position only, which the KL row measures.",
                     "code": "every token of the code, as this row does."}.get(scope, "every prompt position, as this row does."))
    table.rows = [["mean token NLL (nats)", fmt_ci(f.get("nll_base"), 3), fmt_ci(f.get("nll_steered"), 3),
                   fmt_ci(f.get("nll_random"), 3)],
                  ["KL at the answer position vs unsteered", "—", fmt_ci(f.get("kl_answer_steered"), 3),
                   fmt_ci(f.get("kl_answer_random"), 3)]]
    return [table]


def flips(run: Run) -> list[Block]:
    summary = run.json(schema.STEER_SUMMARY)
    if summary is None or not summary.get("flips"):
        return not_run_blocks("steer/summary.json flips")
    table = TableData("Share of held-out verdicts flipped vs baseline, both ways (fixed = now right, broken = now wrong)",
                      ["condition", "vulnerable: fixed (no → yes)", "vulnerable: broken (yes → no)",
                       "secure: fixed (yes → no)", "secure: broken (no → yes)"])
    table.rows = [[CONDITIONS.get(name, name), *(fmt_ci(v.get(k), 3) for k in
                                                  ("vuln_fixed", "vuln_to_secure", "secure_fixed", "secure_to_vuln"))]
                  for name, v in summary["flips"].items()]
    return [table]


def generations(run: Run) -> list[Block]:
    rows = run.jsonl(schema.STEER_GENERATIONS)
    if rows is None:
        return not_run_blocks(schema.STEER_GENERATIONS)
    blocks: list[Block] = [Generation(r) for r in rows[:MAX_GENERATIONS]]
    if len(rows) > MAX_GENERATIONS:
        blocks.append(Text(f"{len(rows) - MAX_GENERATIONS} more in steer/generations.jsonl."))
    return blocks or [Text("No generations recorded.")]
