"""The `vulnsteer` command line (typer). Each command writes a run folder (docs/RUN_FOLDER.md)."""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from vulnsteer.errors import VulnsteerError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Built-in name, local HF dir, .gguf file or hub id.")]
DataOpt = Annotated[Path | None, typer.Option("--data", help="Data root holding secllmholmes/ (else $VULNSTEER_DATA, else ../shared/data).")]
SubsetOpt = Annotated[list[str] | None, typer.Option("--subset", help="SecLLMHolmes subset, 'sven', or a pairs .jsonl path; repeatable.")]
CweOpt = Annotated[list[str] | None, typer.Option("--cwe", help="Restrict to these CWEs, e.g. CWE-787; repeatable.")]
TemplateOpt = Annotated[str, typer.Option("--template", "-t", help="Prompt template id (docs/PROMPTS.md).")]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Run folder (default runs/<time>-<command>).")]
CacheOpt = Annotated[Path | None, typer.Option("--cache-dir", help="Model and activation cache (default $VULNSTEER_CACHE or ~/.cache/vulnsteer).")]
TrustOpt = Annotated[bool, typer.Option("--trust-remote-code", help="Allow a hub model's own code to run (off by default).")]


def guarded(fn: F) -> F:
    """Bad input -> one line on stderr and exit code 2; results already written stay on disk."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except VulnsteerError as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def _baseline_cfg(subset, cwe, template, generate, max_new_tokens, batch_size, max_code_tokens, long_files, n_boot, seed):
    from vulnsteer.data.fitting import POLICIES
    from vulnsteer.experiments.baseline import BaselineConfig

    if long_files not in POLICIES:
        raise VulnsteerError(f"--long-files {long_files!r}: use one of {', '.join(POLICIES)}")
    return BaselineConfig(
        subsets=tuple(subset or ("hand-crafted",)), cwes=tuple(cwe) if cwe else None, template=template,
        generate=generate, max_new_tokens=max_new_tokens, batch_size=batch_size, max_code_tokens=max_code_tokens,
        long_files=long_files, n_boot=n_boot, seed=seed,
    )


def _check_template(template: str) -> None:
    from vulnsteer.data.prompts import get_template

    get_template(template)


@app.command()
@guarded
def data(data: DataOpt = None, subset: SubsetOpt = None) -> None:
    """Print the inventory: records per subset x CWE x label."""
    from vulnsteer.data.inventory import inventory_table
    from vulnsteer.data.root import resolve_data_root
    from vulnsteer.data.secllmholmes import SUBSETS
    from vulnsteer.experiments.context import load_records

    root = resolve_data_root(data)
    records = load_records(root, subset or [*SUBSETS, "sven"])
    out.print(f"data root: {root}")
    out.print(inventory_table(records))


@app.command()
@guarded
def baseline(
    model: ModelOpt = "qwen2.5-coder-0.5b",
    data: DataOpt = None,
    subset: SubsetOpt = None,
    cwe: CweOpt = None,
    template: TemplateOpt = "S1",
    generate: Annotated[bool, typer.Option(help="Also generate a multi-token answer and parse it.")] = True,
    max_new_tokens: Annotated[int, typer.Option(min=1)] = 256,
    batch_size: Annotated[int, typer.Option(min=1, help="Prompts decoded together in generation.")] = 48,
    max_code_tokens: Annotated[int, typer.Option(min=16, help="Longer files follow --long-files.")] = 1536,
    long_files: Annotated[str, typer.Option(help="truncate (around the changed lines) or skip.")] = "truncate",
    n_boot: Annotated[int, typer.Option(min=100)] = 1000,
    seed: int = 0,
    out_dir: OutOpt = None,
    cache_dir: CacheOpt = None,
    trust_remote_code: TrustOpt = False,
) -> None:
    """Zero-/few-shot detection by the unsteered model, per CWE, beside published LLMs."""
    cfg = _baseline_cfg(subset, cwe, template, generate, max_new_tokens, batch_size, max_code_tokens, long_files, n_boot, seed)
    _execute("baseline", (), model, data, cfg, None, None, "caa", 4, 1, seed, out_dir, cache_dir, trust_remote_code)


def _print_baseline(path: Path, baseline_table: Callable) -> None:
    import json

    summary = json.loads((path / "baseline" / "summary.json").read_text())
    pub = path / "published.json"
    published = json.loads(pub.read_text()) if pub.exists() else None
    for reading in summary:
        out.print(baseline_table(summary, published, reading=reading))


LayersOpt = Annotated[str | None, typer.Option("--layers", help="Steered layers, e.g. '0-23' or '4,8,12' (default all).")]
MethodsOpt = Annotated[str, typer.Option("--methods", help="Comma list of caa,pca,probe.")]
TrainOpt = Annotated[list[str] | None, typer.Option("--train", help="Vector training data besides the training folds: augmented, sven; repeatable.")]
FoldsOpt = Annotated[int, typer.Option("--folds", min=3, help="Cross-fitting folds over scenario groups.")]
PerCweOpt = Annotated[bool, typer.Option("--per-cwe", help="One direction per CWE (pooled where a CWE has < 2 training pairs).")]
UnitOpt = Annotated[str, typer.Option("--strength-unit", help="Additive strength unit: sigma, mean_norm, raw or unit.")]
ScopeOpt = Annotated[str, typer.Option("--scope", help="Steered positions: answer (last prompt token) or all (every prompt token; one forward per configuration from the steered block, use a small grid).")]


@app.command()
@guarded
def run(
    model: ModelOpt = "qwen2.5-coder-0.5b",
    data: DataOpt = None,
    subset: SubsetOpt = None,
    cwe: CweOpt = None,
    template: TemplateOpt = "S1",
    train: TrainOpt = None,
    layers: LayersOpt = None,
    methods: MethodsOpt = "caa,pca,probe",
    folds: FoldsOpt = 4,
    per_cwe: PerCweOpt = False,
    strength_unit: UnitOpt = "sigma",
    scope: ScopeOpt = "answer",
    n_random: Annotated[int, typer.Option(min=1, help="Random-direction controls per test sample.")] = 3,
    generate: Annotated[bool, typer.Option(help="Multi-token baseline answers.")] = True,
    max_new_tokens: Annotated[int, typer.Option(min=1)] = 256,
    batch_size: Annotated[int, typer.Option(min=1, help="Prompts decoded together in generation.")] = 48,
    max_code_tokens: Annotated[int, typer.Option(min=16)] = 1536,
    long_files: str = "truncate",
    n_boot: Annotated[int, typer.Option(min=100)] = 1000,
    seed: int = 0,
    out_dir: OutOpt = None,
    cache_dir: CacheOpt = None,
    trust_remote_code: TrustOpt = False,
) -> None:
    """The main job: baseline, probes and held-out steering with controls, then report.md/report.html."""
    bcfg = _baseline_cfg(subset, cwe, template, generate, max_new_tokens, batch_size, max_code_tokens, long_files, n_boot, seed)
    _execute("run", ("probe", "steer"), model, data, bcfg, train, layers, methods, folds, n_random, seed, out_dir, cache_dir, trust_remote_code, per_cwe, strength_unit, scope)


@app.command()
@guarded
def probe(
    model: ModelOpt = "qwen2.5-coder-0.5b",
    data: DataOpt = None,
    subset: SubsetOpt = None,
    cwe: CweOpt = None,
    template: TemplateOpt = "S1",
    max_code_tokens: Annotated[int, typer.Option(min=16)] = 1536,
    seed: int = 0,
    out_dir: OutOpt = None,
    cache_dir: CacheOpt = None,
    trust_remote_code: TrustOpt = False,
) -> None:
    """Per-layer linear probes (grouped CV, shuffled-label control) on the answer-position residuals."""
    bcfg = _baseline_cfg(subset, cwe, template, False, 1, 1, max_code_tokens, "truncate", 1000, seed)
    _execute("probe", ("probe",), model, data, bcfg, None, None, "caa", 4, 1, seed, out_dir, cache_dir, trust_remote_code)


@app.command(name="steer")
@guarded
def steer_command(
    model: ModelOpt = "qwen2.5-coder-0.5b",
    data: DataOpt = None,
    subset: SubsetOpt = None,
    cwe: CweOpt = None,
    template: TemplateOpt = "S1",
    train: TrainOpt = None,
    layers: LayersOpt = None,
    methods: MethodsOpt = "caa,pca,probe",
    folds: FoldsOpt = 4,
    per_cwe: PerCweOpt = False,
    strength_unit: UnitOpt = "sigma",
    scope: ScopeOpt = "answer",
    n_random: Annotated[int, typer.Option(min=1)] = 3,
    max_code_tokens: Annotated[int, typer.Option(min=16)] = 1536,
    n_boot: Annotated[int, typer.Option(min=100)] = 1000,
    seed: int = 0,
    out_dir: OutOpt = None,
    cache_dir: CacheOpt = None,
    trust_remote_code: TrustOpt = False,
) -> None:
    """Held-out steering experiment (vectors on training folds, choice on validation, test with controls)."""
    bcfg = _baseline_cfg(subset, cwe, template, False, 1, 1, max_code_tokens, "truncate", n_boot, seed)
    _execute("steer", ("steer",), model, data, bcfg, train, layers, methods, folds, n_random, seed, out_dir, cache_dir, trust_remote_code, per_cwe, strength_unit, scope)


def _execute(command, stages, model, data, bcfg, train, layers, methods, folds, n_random, seed, out_dir, cache_dir,
             trust_remote_code, per_cwe=False, strength_unit="sigma", scope="answer") -> None:
    from vulnsteer.experiments.context import RunDir, open_context
    from vulnsteer.experiments.run import RunConfig, run_all
    from vulnsteer.experiments.steer import SteerConfig
    from vulnsteer.report.document import write_report
    from vulnsteer.report.tables import baseline_table, headline_table

    _check_template(bcfg.template)
    scfg = SteerConfig(layers=_parse_layers(layers), methods=tuple(_split(methods)), k_folds=folds, n_random=n_random,
                       per_cwe=per_cwe, strength_unit=strength_unit, scope=scope, seed=seed)
    cfg = RunConfig(baseline=bcfg, steer=scfg, train=tuple(train or ("holdout",)), stages=stages)
    t0 = time.time()
    ctx = open_context(model, data, cache_dir, bcfg.subsets, bcfg.cwes, trust_remote_code)
    settings = asdict(cfg) if stages else {"baseline": asdict(bcfg)}  # a baseline run has no steering settings
    run_dir = RunDir.create(out_dir, command, {"model": ctx.loaded.model_id, "data_root": ctx.data_root, **settings})
    run_dir.stage("load", time.time() - t0)
    summary = run_all(ctx, cfg, run_dir)
    _print_baseline(run_dir.path, baseline_table)
    if summary:
        out.print(headline_table(summary))
        out.print(summary["verdict"])
    md, html = write_report(run_dir.path)
    out.print(f"run folder: {run_dir.path}  report: {md.name}, {html.name}  ({time.time() - t0:.0f} s)")


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _parse_layers(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    layers: list[int] = []
    try:
        for part in _split(text):
            if "-" in part:
                a, b = part.split("-", 1)
                layers += range(int(a), int(b) + 1)
            else:
                layers.append(int(part))
    except ValueError:
        raise VulnsteerError(f"--layers {text!r} is not a list like '0-23' or '4,8,12'") from None
    return tuple(sorted(set(layers)))


@app.command()
@guarded
def report(run_dir: Annotated[Path, typer.Argument(help="A run folder written by vulnsteer.")]) -> None:
    """Rebuild report.md and report.html from a run folder (no model needed)."""
    from vulnsteer.report.document import write_report

    if not (run_dir / "config.json").is_file():
        raise VulnsteerError(f"{run_dir} is not a vulnsteer run folder (no config.json); pass the folder a command wrote")
    md, html = write_report(run_dir)
    out.print(f"report: {md}  {html}")


@app.command()
@guarded
def compare(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run folders written by vulnsteer run, one per model.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder for comparison.md/.html.")] = Path("comparison"),
) -> None:
    """Several run folders side by side: baseline, probe depth curves, steering controls, cost (no model needed)."""
    from vulnsteer.report.compare import write_comparison

    md, html = write_comparison(run_dirs, out_dir)
    out.print(f"comparison: {md}  {html}")


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
