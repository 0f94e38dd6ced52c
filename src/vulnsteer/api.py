"""The library surface: models and records in, the whole study in one call (docs/API.md). The notebook
functions (activations, vectors, probes, scores) are in api_notebook.py.

`run` is what `vulnsteer run|baseline|probe|steer` execute, `study` what `vulnsteer study` executes: the
command line only builds their configs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vulnsteer.api_inputs import names
from vulnsteer.data.records import Record
from vulnsteer.data.root import resolve_data_root
from vulnsteer.errors import DataError, VulnsteerError
from vulnsteer.experiments.config import RunConfig
from vulnsteer.experiments.preflight import preflight
from vulnsteer.experiments.run_folder.folders import check_writable, resolved
from vulnsteer.experiments.study_spec import StudySpec
from vulnsteer.options import Executor

if TYPE_CHECKING:  # torch-free at import: the command line imports this module before any option check
    from vulnsteer.experiments.study import CellJob
    from vulnsteer.model.loading import LoadedModel


def load_model(
    name: str | Path = "qwen2.5-coder-0.5b",
    cache_dir: Path | str | None = None,
    trust_remote_code: bool = False,
    device: str = "auto",
    dtype: str = "float32",
) -> LoadedModel:
    """A built-in name (qwen2.5-coder-0.5b, qwen2.5-coder-1.5b, gemma-3-270m, tiny-<arch>), a .gguf file, an HF
    folder or a hub id, in eval mode on `device` (auto: a GPU when there is one) computing in `dtype`
    (float32, bf16-mixed, bfloat16); with its parts located and the re-entry shortcut the sweep uses checked
    against full forwards (docs/MODELS.md)."""
    if not isinstance(name, (str, Path)):
        raise VulnsteerError(f"load_model takes a model name or path, not {type(name).__name__} {name!r}")
    from vulnsteer.model.loading import default_cache_dir
    from vulnsteer.model.loading import load_model as _load
    from vulnsteer.steering.reentry_check import checked

    root = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "models"
    return checked(_load(str(name), cache_dir=root, trust_remote_code=trust_remote_code, device=device, dtype=dtype))


def wrap_model(model: Any, tokenizer: Any, name: str | None = None, dtype: str = "float32") -> LoadedModel:
    """A transformers causal LM you already loaded (and its tokenizer) as a `LoadedModel`, converted in place to
    `dtype`; its source hash is over its weights and vocabulary (a second per GB), so the activation cache and
    every vector's provenance tell it apart from other models."""
    from vulnsteer.model.wrap import wrap
    from vulnsteer.steering.reentry_check import checked

    return checked(wrap(model, tokenizer, name, dtype))


def load_records(subsets: str | Sequence[str] = ("hand-crafted",), cwes: str | Sequence[str] | None = None,
                 data: Path | str | None = None) -> list[Record]:
    """Records of SecLLMHolmes subsets, "sven", or pairs .jsonl files (one name or a list), of `cwes` (one or a
    list; None: all). The data root (`data`, else $VULNSTEER_DATA, else ../shared/data beside the checkout)
    is needed only for SecLLMHolmes and SVEN: a pairs file loads on its own."""
    from vulnsteer.data.load import SVEN, dataset_names
    from vulnsteer.data.load import load_records as _load
    from vulnsteer.data.secllmholmes import SUBSETS

    chosen = dataset_names(names(subsets, "subsets") or [], "subset")
    if not chosen:
        raise DataError("load_records needs at least one subset name or pairs .jsonl path")
    wanted = names(cwes, "cwes")
    needs_root = any(n in SUBSETS or n == SVEN for n in chosen)
    root = resolve_data_root(Path(data) if data else None) if needs_root else Path(".")
    return _load(root, list(chosen), wanted)


def run(
    cfg: RunConfig,
    model: str = "qwen2.5-coder-0.5b",
    data: Path | str | None = None,
    out: Path | None = None,
    cache_dir: Path | None = None,
    trust_remote_code: bool = False,
    command: str = "run",
    force: bool = False,
) -> Path:
    """Run `cfg` (baseline, then its stages) and write the run folder with report.md/report.html.

    Checks before anything slow: the data (and folds against its groups), then the layers and answer
    length against the model's shape read from its config or GGUF header, then the weights load."""
    if not isinstance(cfg, RunConfig):
        raise VulnsteerError(f"run takes a RunConfig (vulnsteer.experiments.config), not {type(cfg).__name__}")
    t0 = time.time()
    if out is None:
        check_writable(resolved("runs"), "--out (default runs/)")
    root, records = preflight(cfg, model, data, out, force, command, cache_dir)  # before torch is imported
    from vulnsteer.experiments.run_folder.run_dir import fresh_run_path
    from vulnsteer.progress import log

    out = Path(out) if out is not None else fresh_run_path(command)
    log(f"{command}: model {model}, {cfg.dtype} on device {cfg.device}, data {root} ({len(records)} files: "
        f"{', '.join(cfg.baseline.subsets)}), run folder {out}")

    from vulnsteer.experiments.inputs import input_hashes
    from vulnsteer.experiments.run import run_all
    from vulnsteer.experiments.run_folder.run_dir import RunDir
    from vulnsteer.prompting.context import open_context
    from vulnsteer.report.document import write_report

    ctx = open_context(model, root, cache_dir, cfg.baseline.subsets, cfg.baseline.cwes, trust_remote_code,
                       records=records, dtype=cfg.dtype, device=cfg.device)
    if "steer" in cfg.stages:
        cfg.steer.check_layers(ctx.loaded.parts.n_layers)
    recorded = {"model": ctx.loaded.model_id, "data_root": ctx.data_root, **cfg.settings(),
                "device_used": ctx.loaded.device}
    inputs = {**input_hashes(cfg, records, root), "model": ctx.loaded.source_hash}
    run_dir = RunDir.create(out, command, recorded, force=force, inputs=inputs)
    run_dir.stage("load", time.time() - t0)
    try:
        run_all(ctx, cfg, run_dir)
        write_report(run_dir.path, finishing=True)  # "finished" is written last, once every output exists
    except KeyboardInterrupt:
        run_dir.finish("interrupted")
        raise
    except BaseException:
        run_dir.finish("failed")
        raise
    run_dir.finish("finished")
    return run_dir.path


def study(
    spec: StudySpec,
    out: Path | None = None,
    data: Path | str | None = None,
    cache_dir: Path | None = None,
    trust_remote_code: bool = False,
    executor: Executor | str = Executor.LOCAL,
    ray_address: str | None = None,
) -> Path:
    """Run every cell of `spec` (models x readouts x splits) as a run folder under out/cells/, then write
    out/study.md and out/study.html side by side. Cells already finished are skipped, an interrupted one
    resumes; every cell is checked before the first loads a model (docs/STUDY.md)."""
    from vulnsteer.experiments.study import check_executor, plan_study, run_cells

    if not isinstance(spec, StudySpec):
        raise VulnsteerError(f"study takes a StudySpec (vulnsteer.experiments.study_spec), not {type(spec).__name__}")
    check_executor(executor)
    from vulnsteer.progress import log

    plan = plan_study(spec, out, data, cache_dir, trust_remote_code)
    log(f"study: {len(plan.jobs)} cells ({len(plan.todo)} to run) of {', '.join(spec.models)}, executor "
        f"{Executor(executor)}, data {plan.jobs[0].data if plan.jobs else '-'}, study folder {plan.path}")
    run_cells(plan, run_cell, executor, ray_address)
    from vulnsteer.report.study import write_study

    write_study(plan.path)
    return plan.path


def run_cell(job: CellJob) -> Path:
    """One study cell, as `run` runs it (on a Ray worker too); its log lines name the cell."""
    from vulnsteer.experiments.run_folder.run_dir import read_config
    from vulnsteer.progress import log, prefixed

    with prefixed(job.cell.title):
        old = read_config(job.out)
        log("resuming its interrupted run" if old is not None else "started")
        t0 = time.time()
        path = run(job.config, model=job.cell.model, data=job.data, out=job.out, cache_dir=job.cache_dir,
                   trust_remote_code=job.trust_remote_code, command="run")
        log(f"finished in {time.time() - t0:.0f} s")
    return path
