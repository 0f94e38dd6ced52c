"""One line naming the long-file policy (data/fitting.py) and the files it touched, for every report section
whose numbers it shapes: a reader must not take a pooled or cut reading for a whole-file one."""

from __future__ import annotations

from typing import Any

from vulnsteer.experiments.coverage import GeneratedCounts, KeptCounts


def long_file_line(cfg: Any, rows: list[dict] | None, always: bool = False) -> str | None:
    """From config.json and baseline/samples.jsonl: the policy and how many files it read in several windows,
    cut or skipped; None when no file was over the budget (unless `always`) or the run has no baseline."""
    base = cfg.get("baseline") if isinstance(cfg, dict) else None
    if not isinstance(base, dict) or rows is None or "long_files" not in base:
        return None
    policy, budget, n = base["long_files"], base.get("max_code_tokens"), len(rows)
    windowed = sum(1 for r in rows if isinstance(r.get("n_windows"), int) and r["n_windows"] > 1)
    cut = sum(1 for r in rows if r.get("truncated"))
    skipped = sum(1 for r in rows if r.get("skipped"))
    touched = [f"{k} {what}" for k, what in ((windowed, "read in more than one window (score: max over windows; "
                                                        "residuals: mean)"),
                                             (cut, "cut to one window around the lines that differ from their twin"),
                                             (skipped, "skipped")) if k]
    head = f"Long files (--long-files {policy}, budget {budget} code tokens):"
    if touched:
        # Which files and pairs the numbers rest on, per class, wherever a file was left out.
        kept = f" In all, {KeptCounts.of(rows).text()}." if skipped else ""
        return f"{head} of {n} files, {'; '.join(touched)}.{kept}"
    return f"{head} none of the {n} files exceeded the budget." if always else None


def generation_line(cfg: Any, rows: list[dict] | None) -> str | None:
    """How many files have a generated answer (config.json's baseline.generate_sample and the rows); None
    when the run generated for every file or has no baseline."""
    base = cfg.get("baseline") if isinstance(cfg, dict) else None
    sample = base.get("generate_sample") if isinstance(base, dict) else None
    if rows is None or not isinstance(sample, int) or isinstance(sample, bool):
        return None
    text = GeneratedCounts.of(rows, sample).text()
    return text[0].upper() + text[1:] + "."
