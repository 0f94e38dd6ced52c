"""The run folder's layout: every file name a run writes, shared by the writer (`RunDir`, the stages) and
the readers (`report/`), so neither guesses at the other's names (docs/RUN_FOLDER.md)."""

from __future__ import annotations

# In config.json; bump when a file's meaning or layout changes. 3: deltas gain their MDE ([v, lo, hi, mde]),
# flips and fluency become [v, lo, hi], choices.json gains the template (readers accept version 2 files).
SCHEMA_VERSION = 3

MARKER = ".vulnsteer.json"  # {"vulnsteer": version, "kind": "run" or "comparison", "schema_version", "created_at"}
CONFIG = "config.json"
BASELINE_SAMPLES = "baseline/samples.jsonl"
BASELINE_SUMMARY = "baseline/summary.json"
BASELINE_SUMMARY_CSV = "baseline/summary.csv"
BASELINE_TEMPLATES = "baseline/templates.json"  # vulnsteer baseline --template all
PUBLISHED = "published.json"
TRANSFER = "transfer.json"  # a --fit-on run: what was fit on, validated on and tested on
PROBE_CURVE = "probe/curve.json"
STEER_SWEEP = "steer/sweep.csv"
STEER_SWEEP_SUMMARY = "steer/sweep_summary.csv"
STEER_CHOICES = "steer/choices.json"
STEER_TEMPLATES = "steer/templates.json"  # --steer-template auto: the template chosen per fold
STEER_TEST = "steer/test.jsonl"
STEER_CURVES = "steer/curves.json"
STEER_SUMMARY = "steer/summary.json"
STEER_GENERATIONS = "steer/generations.jsonl"
STEER_CONDITIONAL = "steer/conditional.json"  # per fold: the condition layer, side and threshold
STEER_VECTORS = "steer/vectors"  # fold<f>-<cwe>.{safetensors,json,gguf}
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
FIGURES = "figures"

# a study folder (docs/STUDY.md): its spec and cell list, one run folder per cell, the side-by-side report
STUDY = "study.json"
STUDY_CELLS = "cells"  # cells/<model>__<readout>__<fit>__<test>/ is an ordinary run folder
STUDY_MD = "study.md"
STUDY_HTML = "study.html"
STUDY_PROBE_FIGURE = "figures/study_probe_curves.png"

# config.json keys the writer and readers share
STAGE_SECONDS = "stage_seconds"  # {stage: wall seconds}; "wall_seconds" is the total
