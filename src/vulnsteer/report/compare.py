"""`vulnsteer compare`: several run folders (one per model, say) side by side in one report.

Everything is read back from the run folders (docs/RUN_FOLDER.md), like `vulnsteer report`; nothing is
re-run. A file a run lacks (a baseline-only run has no probe or steering results, an interrupted one
may lack more) or cannot parse is shown as missing for that run; the other runs still compare.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vulnsteer.errors import DataError
from vulnsteer.experiments.run_folder import schema
from vulnsteer.experiments.run_folder.folders import COMPARISON, RUN, check_writable, is_marked, mark, marker, resolved
from vulnsteer.experiments.run_folder.reader import Run, unfinished
from vulnsteer.report import plots
from vulnsteer.report.blocks import Block, Fig, Section, Text
from vulnsteer.report.document import write_document
from vulnsteer.report.long_files import generation_line
from vulnsteer.report.tables import NA, TableData, cwe_order, fmt, fmt_ci

MISSING = "missing"
TOKENS_PER_SECOND = (
    "tokens/s = prompt tokens of all baseline samples (baseline/samples.jsonl n_tokens, skipped files excluded) "
    "/ seconds of the baseline_forward stage: the speed of unsteered prompt passes (prefill only, one prompt "
    "at a time, residuals recorded) on the machine and threads that ran that run, not generation speed. "
    "Where the activation cache served the passes (a repeated probe or baseline run without generation) "
    "it measures the cache, not the model."
)


@dataclass
class Compared:
    """One run folder and the short label it gets in tables and the figure legend."""

    label: str
    run: Run

    def get(self, rel: str) -> Any:
        """The parsed file, or None where it is absent or unreadable (shown as missing)."""
        try:
            return self.run.json(rel)
        except DataError:
            return None

    def rows(self, rel: str) -> list[dict] | None:
        try:
            return self.run.jsonl(rel)
        except DataError:
            return None

    def config(self) -> dict:
        cfg = self.get("config.json")
        return cfg if isinstance(cfg, dict) else {}


def _labels(run_dirs: Sequence[Path]) -> list[Compared]:
    runs = [Run(d) for d in run_dirs]
    names = []
    for run in runs:
        try:
            cfg = run.json("config.json")
        except DataError:
            cfg = None
        model = cfg.get("model") if isinstance(cfg, dict) else None
        names.append(model if isinstance(model, str) else run.dir.name)
    # the same model twice (two templates, say): the folder name tells them apart
    return [Compared(f"{n} ({r.dir.name})" if names.count(n) > 1 else n, r) for n, r in zip(names, runs)]


def _runs_table(runs: list[Compared]) -> TableData:
    table = TableData("Runs compared", ["model", "run folder", "command", "status", "model type", "blocks",
                                        "parts found by", "steering re-entry"])
    for c in runs:
        cfg, arch = c.config(), c.config().get("architecture") or {}
        reentry = arch.get("reentry_exact")
        why = unfinished(cfg)
        table.rows.append([c.label, str(c.run.dir), str(cfg.get("command", MISSING)),
                           "finished" if why is None else f"UNFINISHED ({why})",
                           str(arch.get("model_type", MISSING)), str(arch.get("n_layers", MISSING)),
                           str(arch.get("found_by", MISSING)),
                           MISSING if reentry is None else "exact" if reentry else "full forwards (not exact)"])
    return table


def _baseline(runs: list[Compared]) -> list[Block]:
    summaries = {c.label: c.get("baseline/summary.json") for c in runs}
    blocks: list[Block] = []
    for reading, what, metrics in (("score", "answer score log P(yes) - log P(no)", ("accuracy", "auroc")),
                                   ("generation", "verdict parsed from generation", ("accuracy",))):
        have = {k: s[reading] for k, s in summaries.items() if isinstance(s, dict) and s.get(reading)}
        if not have:
            continue
        cwes = cwe_order(sorted({cwe for table in have.values() for cwe in table}))
        for metric in metrics:
            name = "AUROC" if metric == "auroc" else metric
            table = TableData(f"Baseline {name} per CWE ({what}), 95% interval", ["CWE", *summaries])
            for cwe in cwes:
                table.rows.append([cwe] + [fmt_ci(have[k][cwe].get(metric)) if k in have and cwe in have[k]
                                           else (NA if k in have else MISSING) for k in summaries])
            blocks.append(table)
        if reading == "generation":
            blocks += [Text(f"{c.label}: {line}") for c in runs
                       if (line := generation_line(c.config(), c.run.jsonl(schema.BASELINE_SAMPLES)))]
    lacking = [k for k, s in summaries.items() if not isinstance(s, dict)]
    if lacking:
        blocks.append(Text(f"baseline/summary.json missing for: {', '.join(lacking)}."))
    return blocks or [Text("No run has baseline/summary.json.")]


def _probe(runs: list[Compared], figures: Path) -> list[Block]:
    curves: dict[str, dict] = {}
    for c in runs:
        curve = c.get("probe/curve.json")
        if isinstance(curve, dict) and curve.get("layers") and curve.get("auroc"):
            curves[c.label] = {**curve, "n_layers": (c.config().get("architecture") or {}).get("n_layers")}
    if not curves:
        return [Text("No run has probe/curve.json.")]
    blocks: list[Block] = [Fig(plots.probe_depth_plot(curves, figures / "probe_depth.png"),
                               "probe AUROC by relative depth, one line per model")]
    table = TableData("Best probe layer per model", ["model", "blocks", "best layer", "relative depth", "AUROC",
                                                     "shuffled-label max there"])
    for c in runs:
        curve = curves.get(c.label)
        if curve is None:
            table.rows.append([c.label] + [MISSING] * 5)
            continue
        n = int(curve["n_layers"] or len(curve["layers"]))
        best = curve.get("best_layer")
        i = curve["layers"].index(best) if best in curve["layers"] else None
        control = curve.get("control_auroc_max") or []
        table.rows.append([c.label, str(n), str(best), fmt((int(best or 0) + 1) / n) if i is not None else NA,
                           fmt(curve["auroc"][i]) if i is not None else NA,
                           fmt(control[i]) if i is not None and i < len(control) else NA])
    return blocks + [table]


def _condition(summary: dict, name: str, metric: str) -> Any:
    return (summary.get("conditions", {}).get(name) or {}).get("all", {}).get(metric)


def _steering(runs: list[Compared]) -> list[Block]:
    table = TableData("Held-out steering against its controls (all CWEs, 95% interval)",
                      ["model", "steered acc.", "random-direction acc.", "steered - random acc. (paired)",
                       "steered - random AUROC (paired)", "bias-only control acc.", "flagged bias only"])
    for c in runs:
        s = c.get("steer/summary.json")
        if not isinstance(s, dict):
            table.rows.append([c.label] + [MISSING] * 6)
            continue
        paired = s.get("steered_minus_random") or {}
        bias = (s.get("bias_only") or {}).get("steered")
        table.rows.append([c.label, fmt_ci(_condition(s, "steered", "accuracy")),
                           fmt_ci(_condition(s, "random", "accuracy")), fmt_ci(paired.get("accuracy")),
                           fmt_ci(paired.get("auroc")), fmt_ci(_condition(s, "baseline_calibrated", "accuracy")),
                           NA if bias is None else "yes" if bias else "no"])
    return [table, Text("The bias-only control is the unsteered answer score with its yes/no threshold tuned on "
                        "the validation fold: steering that only beats the baseline by as much as this control "
                        "moved the bias, not the ranking. 'Flagged bias only' is the run's own verdict on that.")]


def _tokens_per_second(c: Compared) -> tuple[str, str, str]:
    """(prompt tokens, baseline forward seconds, tokens/s) as cells."""
    rows = c.rows("baseline/samples.jsonl")
    seconds = (c.config().get(schema.STAGE_SECONDS) or {}).get("baseline_forward")
    tokens = None if rows is None else sum(int(r.get("n_tokens") or 0) for r in rows if not r.get("skipped"))
    rate = fmt(tokens / seconds, 0) if tokens and isinstance(seconds, (int, float)) and seconds > 0 else MISSING
    return (MISSING if tokens is None else str(tokens), fmt(seconds, 1) if seconds is not None else MISSING, rate)


def _cost(runs: list[Compared]) -> list[Block]:
    table = TableData("Fluency cost and speed", ["model", "NLL unsteered", "NLL steered", "NLL random",
                                                 "KL answer steered", "wall time (s)", "prompt tokens",
                                                 "baseline forward (s)", "tokens/s"])
    for c in runs:
        s = c.get("steer/summary.json")
        f = s.get("fluency") if isinstance(s, dict) else None
        nll = ([fmt(f.get(k), 3) for k in ("nll_base", "nll_steered", "nll_random", "kl_answer_steered")]
               if isinstance(f, dict) else [MISSING] * 4)
        wall = c.config().get("wall_seconds")
        # a run that did not finish: its wall time covers only the part it ran
        shown = MISSING if wall is None else fmt(wall, 0) + ("" if unfinished(c.config()) is None else " (partial: unfinished)")
        table.rows.append([c.label, *nll, shown, *_tokens_per_second(c)])
    return [table, Text("NLL: mean next-token loss (nats) on held-out secure code with the chosen steering at "
                        "every position; KL: at the answer position, steered vs unsteered."), Text(TOKENS_PER_SECOND)]


def check_run_dir(d: Path) -> None:
    """A folder `compare` can read: a run folder (config.json naming its command); a study folder, a folder
    without config.json or with a corrupt one is refused in one line."""
    if not d.is_dir():
        raise DataError(f"{d}: not a run folder (no such folder); pass the run folders vulnsteer run wrote")
    if (d / schema.STUDY).is_file():
        raise DataError(f"{d} is a study folder, not a run folder; compare its cells ({d / schema.STUDY_CELLS}/*) "
                        f"or read its {schema.STUDY_MD}")
    try:
        cfg = Run(d).json(schema.CONFIG)
    except DataError as exc:
        raise DataError(f"{d}: its {schema.CONFIG} is corrupt ({exc}); pass a run folder vulnsteer wrote") from None
    if cfg is None:
        raise DataError(f"{d} is not a vulnsteer run folder (no {schema.CONFIG}); pass the folders vulnsteer run wrote")
    if not isinstance(cfg, dict) or not isinstance(cfg.get("command"), str):
        raise DataError(f"{d}: its {schema.CONFIG} is not a vulnsteer run's (no command); pass a run folder")


def check_compare_out(out_dir: Path, run_dirs: Sequence[Path]) -> Path:
    """The resolved --out of compare: absent, empty or an earlier comparison's folder; never a data root (or
    inside one), a run folder (or inside one, or one compared) or a user's non-empty folder."""
    out = resolved(out_dir)
    check_writable(out, "--out")
    for d in (out, *out.parents):
        if (d / "secllmholmes").is_dir():
            raise DataError(f"--out {out} lies in the data root {d}; write the comparison elsewhere")
        info = marker(d)
        if (info is not None and info["kind"] == RUN) or d in run_dirs:
            raise DataError(f"--out {out} lies in the run folder {d}; write the comparison elsewhere")
    if out.is_dir() and any(out.iterdir()) and not is_marked(out, COMPARISON):
        raise DataError(f"--out {out} is not empty and holds no earlier comparison (no {schema.MARKER}); choose an "
                        "empty or new folder")
    return out


def write_comparison(run_dirs: Sequence[Path], out_dir: Path) -> tuple[Path, Path]:
    """Write out_dir/comparison.md and out_dir/comparison.html (figures in out_dir/figures)."""
    run_dirs = [Path(d) for d in run_dirs]
    if not run_dirs:
        raise DataError("compare needs at least one run folder; pass the folders vulnsteer run wrote")
    for d in run_dirs:
        check_run_dir(d)
    out_dir = check_compare_out(Path(out_dir), [d.resolve() for d in run_dirs])
    out_dir.mkdir(parents=True, exist_ok=True)
    if not is_marked(out_dir, COMPARISON):
        mark(out_dir, COMPARISON)
    runs = _labels(run_dirs)
    sections = [
        Section("Runs compared", [_runs_table(runs)]),
        Section("Baseline per CWE", _baseline(runs)),
        Section("Probe AUROC by relative depth", _probe(runs, out_dir / "figures")),
        Section("Steering: steered minus random, and the bias-only control", _steering(runs)),
        Section("Cost: fluency, wall time, tokens/s", _cost(runs)),
    ]
    return write_document(f"vulnsteer comparison of {len(runs)} runs", sections, out_dir, "comparison")
