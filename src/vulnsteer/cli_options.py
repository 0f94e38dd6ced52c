"""The typer option types of the CLI's commands (cli.py): flag names, help texts and the choices each lists;
the defaults stay in experiments/config.py, which the commands read."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from vulnsteer.options import (
    Executor, LongFiles, Method, Readout, SearchMode, StrengthUnit, StudyPreset, SweepScope, Train,
)


def _choices(enum: Any) -> str:
    return ", ".join(m.value for m in enum)


ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Built-in name, local HF dir, .gguf file or hub id.")]
DataOpt = Annotated[Path | None, typer.Option(
    "--data", help="Data root holding secllmholmes/ (else $VULNSTEER_DATA, else ../shared/data).")]
SubsetOpt = Annotated[list[str] | None, typer.Option(
    "--subset", help="SecLLMHolmes subset, 'sven', 'planted' (the positive control), or a pairs .jsonl path; "
    "repeatable or comma-separated.")]
CweOpt = Annotated[list[str] | None, typer.Option(
    "--cwe", help="Restrict to these CWEs, e.g. CWE-787; repeatable or comma-separated.")]
TemplateOpt = Annotated[str, typer.Option(
    "--template", "-t", help="Prompt template id (docs/PROMPTS.md), e.g. S1..S6, R1, R2, R4..R6, D1..D5.")]
BaselineTemplateOpt = Annotated[str, typer.Option(
    "--template", "-t", help="Prompt template id (docs/PROMPTS.md), or 'all': the standard baseline under S1 plus "
    "baseline/templates.json, every implemented template on the same files (answer score only).")]
SteerTemplateOpt = Annotated[str | None, typer.Option(
    "--steer-template", help="Template steering uses: 'auto' (per fold, best unsteered validation balanced "
    "accuracy; one extra pass per template and file; not with --fit-on) or an id (default: --template).")]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Run folder (default runs/<time>-<command>).")]
CacheOpt = Annotated[Path | None, typer.Option(
    "--cache-dir", help="Model and activation cache (default $VULNSTEER_CACHE or ~/.cache/vulnsteer).")]
TrustOpt = Annotated[bool, typer.Option("--trust-remote-code", help="Allow a hub model's own code to run (off by default).")]
GenerateOpt = Annotated[bool, typer.Option(help="Also generate a multi-token answer and parse it.")]
NewTokensOpt = Annotated[int, typer.Option(help="Tokens generated per answer.")]
SampleOpt = Annotated[int | None, typer.Option(
    "--generate-sample", help="Generate answers for a seeded (--seed), class-balanced sample of this many files "
    "(even; whole pairs first) instead of every file; the answer score still covers every file.")]
BatchOpt = Annotated[int, typer.Option(help="Prompts decoded together in generation.")]
CodeTokensOpt = Annotated[int, typer.Option(help="Longer files follow --long-files.")]
LongOpt = Annotated[str, typer.Option(
    help=f"Files over --max-code-tokens: {_choices(LongFiles)}. windows reads the whole file in windows of whole "
    "lines (answer score: max over windows; residuals: mean); diff-centred keeps one window around the lines "
    "that differ from the patched twin (knowledge of where the bug is); skip leaves the file out; skip-pairs leaves "
    "it out with its twin, so whole pairs go and paired data keeps its class balance.")]
BootOpt = Annotated[int, typer.Option(help="Bootstrap resamples for the 95% intervals.")]
LayersOpt = Annotated[list[str] | None, typer.Option(
    "--layers", help="Steered blocks, e.g. '0-23' or '4,8,12'; repeatable (default all).")]
MethodsOpt = Annotated[list[str] | None, typer.Option(
    "--methods", help=f"Direction methods: {_choices(Method)}; repeatable or comma-separated (default all).")]
TrainOpt = Annotated[list[str] | None, typer.Option(
    "--train", help=f"Vector training data besides the training folds: {_choices(Train)}; repeatable or comma-separated.")]
FitOnOpt = Annotated[list[str] | None, typer.Option(
    "--fit-on", help="Transfer: fit vectors, probes and every choice on these datasets (subset names, 'sven', "
    "pairs .jsonl paths); repeatable or comma-separated.")]
TestOnOpt = Annotated[list[str] | None, typer.Option(
    "--test-on", help="Transfer: report numbers on these datasets only (default --subset); needs --fit-on.")]
FoldsOpt = Annotated[int, typer.Option(
    "--folds", help="Cross-fitting folds over scenario groups (>= 3); with --fit-on, 1 of this many validates.")]
PerCweOpt = Annotated[bool, typer.Option("--per-cwe", help="One direction per CWE (pooled where a CWE has < 2 training pairs).")]
UnitOpt = Annotated[str, typer.Option("--strength-unit", help=f"Additive strength unit: {_choices(StrengthUnit)}.")]
ScopeOpt = Annotated[str, typer.Option(
    "--scope", help=f"Steered positions: {_choices(SweepScope)} (code = every code token, all = every prompt token; "
                    "both re-run the prompt per configuration, so their grid is smaller, docs/STEERING.md).")]
SearchOpt = Annotated[str, typer.Option(
    "--search", help=f"Configurations the validation sweep scores: {_choices(SearchMode)} (grid = every layer x "
    "method x strength; coarse-fine = every layer x method at reference strengths, then every strength at the "
    "--search-top best pairs; docs/STEERING.md).")]
SearchTopOpt = Annotated[int, typer.Option(
    "--search-top", help="With --search coarse-fine: the (layer, method) pairs whose every strength is scored.")]
SearchSubsampleOpt = Annotated[int | None, typer.Option(
    "--search-subsample", help="Score at most this many validation samples per fold in the sweep (seeded, "
    "half per class; default all).")]
ConditionalOpt = Annotated[bool, typer.Option(
    "--conditional/--no-conditional", help="Also report conditional steering (CAST): steer a test file only where "
    "a probe condition chosen on validation passes (no extra forward passes).")]
ReadoutOpt = Annotated[str, typer.Option(
    "--readout", help=f"Residuals probes and vectors read: {_choices(Readout)} (answer = the last prompt token; "
                      "code-mean = mean over the code's tokens; code-last = the code's last token).")]
DtypeOpt = Annotated[str, typer.Option(
    "--dtype", help="Forward-pass precision: float32, bf16-mixed (bfloat16 matmuls, float32 residuals) or "
    "bfloat16 (stored residuals stay float32; docs/BENCHMARKS.md).")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto (cuda, else mps, else cpu), cpu, cuda[:n] or mps.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace the run already in --out (never a folder that is not a run).")]
RandomOpt = Annotated[int, typer.Option(help="Random-direction controls per test sample.")]

# vulnsteer study
PresetOpt = Annotated[str | None, typer.Option(
    "--preset", help=f"A built-in grid: {_choices(StudyPreset)} (default quick; docs/STUDY.md).")]
SpecOpt = Annotated[Path | None, typer.Option("--spec", help="A study TOML file (docs/STUDY.md), instead of --preset.")]
StudyModelsOpt = Annotated[list[str] | None, typer.Option(
    "--model", "-m", help="Study these models instead of the preset's or spec's; repeatable or comma-separated.")]
StudyOutOpt = Annotated[Path | None, typer.Option(
    "--out", "-o", help="Study folder (default runs/<time>-study); the same --out again resumes the study.")]
ExecutorOpt = Annotated[str, typer.Option(
    "--executor", help=f"{_choices(Executor)}: cells one after another here, or one Ray task per cell.")]
RayAddressOpt = Annotated[str | None, typer.Option(
    "--ray-address", help="Ray cluster to send cells to (else $RAY_ADDRESS, else a local Ray instance).")]
