"""The report's sections, built once as blocks (text, table, figure, generation) from a run folder's files
(docs/RUN_FOLDER.md); `document` renders them to markdown and HTML, so the two cannot disagree. A section
whose file is missing says "not run" instead of failing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from vulnsteer.errors import DataError
from vulnsteer.experiments.run_folder import schema
from vulnsteer.experiments.run_folder.reader import Run, readout_and_scope
from vulnsteer.report import plots, steer_sections
from vulnsteer.report.blocks import Block, Fig, Section, Text, not_run_blocks
from vulnsteer.report.long_files import generation_line, long_file_line
from vulnsteer.report.reading import how_to_read, transfer_text
from vulnsteer.report.tables import TableData, baseline_data, fmt, fmt_ci, templates_data
from vulnsteer.report.verdicts import probe_conclusion


def _seconds(s: Any) -> str:
    try:
        s = float(s)
    except (TypeError, ValueError):
        return str(s)
    return f"{s:.1f} s" if s < 120 else f"{int(s // 60)} min {int(s % 60)} s"


def _flat(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [kv for k, v in value.items() for kv in _flat(v, f"{prefix}{k}.")]
    text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return [(prefix.rstrip("."), text if len(text) <= 160 else text[:157] + "...")]


def _config(run: Run) -> list[Block]:
    cfg = run.json(schema.CONFIG)
    if cfg is None:
        return not_run_blocks(schema.CONFIG)
    if not isinstance(cfg, dict):
        raise DataError(f"{run.dir / 'config.json'}: expected a JSON object")
    stage_key = schema.STAGE_SECONDS if isinstance(cfg.get(schema.STAGE_SECONDS), dict) else None
    notes: list[Block] = [Text(f"Note: {n}") for n in cfg.get("notes") or [] if isinstance(n, str)]
    settings = TableData("Configuration (config.json)", ["setting", "value"])
    settings.rows = [[k, v] for k, v in _flat({k: v for k, v in cfg.items()
                                               if k not in (stage_key, "wall_seconds", "notes")})]
    wall = TableData("Wall time per stage", ["stage", "wall time"])
    wall.rows = [[str(k), _seconds(v)] for k, v in (cfg[stage_key].items() if stage_key else [])]
    if "wall_seconds" in cfg:
        wall.rows.append(["total", _seconds(cfg["wall_seconds"])])
    arch: dict = cfg["architecture"] if isinstance(cfg.get("architecture"), dict) else {}
    if arch.get("found_by") == "structure":
        notes.append(Text(f"The parts of this {arch.get('model_type')} model were found by structure search and "
                          "checked with one recorded forward (docs/MODELS.md)."))
    if arch.get("reentry_exact") is False:
        notes.append(Text(f"Re-entering the block stack was not exact for this model ({arch.get('reentry_note')}): "
                          "every steered score here comes from a full forward."))
    return [*notes, settings] + ([wall] if wall.rows else [])


def _templates(run: Run) -> list[Block]:
    table = run.json(schema.BASELINE_TEMPLATES)
    if table is None:
        return [Text(f"Not run ({schema.BASELINE_TEMPLATES} is not in this run folder; "
                     "`vulnsteer baseline --template all` writes it).")]
    blocks: list[Block] = [templates_data(table)]
    return blocks + [Text(f"Skipped {s.get('id')}: {s.get('reason')}") for s in table.get("skipped") or []]


def _baseline(run: Run) -> list[Block]:
    summary = run.json(schema.BASELINE_SUMMARY)
    if summary is None:
        return not_run_blocks(schema.BASELINE_SUMMARY)
    published = run.json(schema.PUBLISHED)
    line = long_file_line(run.json(schema.CONFIG), run.jsonl(schema.BASELINE_SAMPLES), always=True)
    blocks: list[Block] = [] if line is None else [Text(line)]
    sampled = generation_line(run.json(schema.CONFIG), run.jsonl(schema.BASELINE_SAMPLES))
    for reading, what in (("score", "log P(yes) - log P(no) at the answer position"),
                          ("generation", "the verdict parsed from free generation")):
        if reading in summary and summary[reading]:
            blocks += [Text(f"Reading: {what}."), *([Text(sampled)] if reading == "generation" and sampled else []),
                       baseline_data(summary, published, reading)]
        else:
            blocks.append(Text(f"{reading.capitalize()} reading: not run."))
    return blocks


def _probe(run: Run, figures: Path) -> list[Block]:
    curve = run.json(schema.PROBE_CURVE)
    if curve is None:
        return not_run_blocks(schema.PROBE_CURVE)
    blocks: list[Block] = [Fig(plots.probe_curve_plot(curve, figures / "probe_curve.png"), "probe AUROC per layer")]
    where = transfer_text(run.json(schema.CONFIG))
    if where is not None:
        blocks.append(Text(f"Transfer ({where}): each layer's probe was fit on every fit-on sample and scored on the "
                           "test-on samples; the control fits on permuted fit-on labels."))
    best = curve.get("best_layer")
    if best is not None and best in curve.get("layers", []):
        i = curve["layers"].index(best)
        def with_ci(name: str) -> str:
            value = (curve.get(name) or [None] * (i + 1))[i]
            bounds = (curve.get(f"{name}_ci") or [[None, None]] * (i + 1))[i]
            return fmt_ci([value, *bounds])

        blocks.append(Text(f"Best layer {best}: AUROC {with_ci('auroc')}, accuracy {with_ci('accuracy')} "
                           f"({'on the test-on data' if where else 'out-of-fold'}, 95% interval over scenario groups); "
                           "shuffled-label control AUROC mean "
                           f"{fmt(curve['control_auroc_mean'][i])}, max {fmt(curve['control_auroc_max'][i])}."))
    blocks.append(Text(probe_conclusion(curve)))
    return blocks


def build_sections(run_dir: Path) -> list[Section]:
    run = Run(run_dir)
    figures = run.dir / schema.FIGURES
    builders: list[tuple[str, Callable[[], list[Block]]]] = [
        ("Headline: held-out results", lambda: steer_sections.headline(run, figures)),
        ("Verdict", lambda: steer_sections.verdict(run)),
        ("Does steering carry the probe's signal into the answer?", lambda: steer_sections.carry(run)),
        ("Paired comparisons: what each rules out", lambda: steer_sections.comparisons(run)),
        ("Per CWE, beside published LLMs", lambda: steer_sections.per_cwe(run)),
        ("Baseline (no steering)", lambda: _baseline(run)),
        ("Baseline per prompt template (answer score)", lambda: _templates(run)),
        ("Probe curve", lambda: _probe(run, figures)),
        ("Strength and layer curves (validation)", lambda: steer_sections.curves(run, figures)),
        ("Fluency cost", lambda: steer_sections.fluency(run)),
        ("Flip rates", lambda: steer_sections.flips(run)),
        ("Generations side by side", lambda: steer_sections.generations(run)),
        ("How to read this", lambda: [Text(t) for t in how_to_read(run.json(schema.CONFIG))]),
        ("What was run", lambda: _config(run)),
    ]
    # The headings name what the numbers below them depend on; the bare titles stay the sections' keys.
    readout, scope = readout_and_scope(run)
    shown = {"Headline: held-out results": f" (readout {readout}, scope {scope})", "Probe curve": f" (readout {readout})"}
    built = [(title, Section(title + shown.get(title, ""), _labelled(run, title, _guarded(run, title, build))))
             for title, build in builders]
    return _ran_first(built)


def _ran_first(built: list[tuple[str, Section]]) -> list[Section]:
    """The sections that have something to show, the probe first where the steering experiment did not run
    (a probe-only run opens with its result), then one line naming the sections that did not run."""
    def not_run(sec: Section) -> bool:
        return all(isinstance(b, Text) for b in sec.blocks) and any(
            isinstance(b, Text) and b.text.startswith("Not run") for b in sec.blocks)
    ran = [(t, sec) for t, sec in built if not not_run(sec)]
    if any(t == "Headline: held-out results" for t, sec in built if not_run(sec)):
        ran.sort(key=lambda ts: ts[0] != "Probe curve")  # stable: the rest keep their order
    missing = [f"{sec.title} ({b.text.removeprefix('Not run').strip(' .()')})" for _, sec in built if not_run(sec)
               for b in sec.blocks[-1:] if isinstance(b, Text)]
    tail = [Section("Not run", [Text(f"Not run: {'; '.join(missing)}.")])] if missing else []
    return [sec for _, sec in ran] + tail


# Sections whose numbers come from the files as the long-file policy showed them (the baseline says it always).
_POLICY_SHAPED = ("Headline: held-out results", "Verdict", "Per CWE, beside published LLMs", "Probe curve",
                  "Strength and layer curves (validation)", "Fluency cost", "Flip rates", "Generations side by side")


def _labelled(run: Run, title: str, blocks: list[Block]) -> list[Block]:
    """`blocks` led by the long-file line where the policy shaped this section's numbers and touched a file."""
    ran = not (len(blocks) == 1 and isinstance(blocks[0], Text) and blocks[0].text.startswith("Not run"))
    line = long_file_line(run.json(schema.CONFIG), run.jsonl(schema.BASELINE_SAMPLES)) if title in _POLICY_SHAPED else None
    return [Text(line), *blocks] if line is not None and ran else blocks


def _guarded(run: Run, title: str, build: Callable[[], list[Block]]) -> list[Block]:
    """A section whose files hold the wrong types (a hand-edited or foreign config.json, say) is one line
    naming the folder and the section, not a traceback."""
    try:
        return build()
    except DataError:
        raise
    except (TypeError, KeyError, AttributeError, ValueError, IndexError, OverflowError) as exc:
        what = " ".join(str(exc).split())[:120] or type(exc).__name__
        raise DataError(f"{run.dir}: the files behind the report section {title!r} hold unexpected content "
                        f"({type(exc).__name__}: {what}); rerun the command that wrote them") from None
