"""`vulnsteer study`: every cell of a StudySpec as an ordinary run folder under <out>/cells/, run one after
another here or as Ray tasks (docs/STUDY.md). A cell whose folder says "finished" with the same settings is
skipped; an interrupted one resumes through its run folder (the same RunConfig into the same folder).

The cell itself is run by a `runner` the caller passes (vulnsteer.api runs and reports it), so this module
only plans the cells and hands them out.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from vulnsteer.activations.memo import shared_passes
from vulnsteer.errors import VulnsteerError
from vulnsteer.experiments.config import RunConfig
from vulnsteer.experiments.inputs import changed_inputs, describe, input_hashes
from vulnsteer.experiments.preflight import preflight
from vulnsteer.experiments.run_folder import schema
from vulnsteer.experiments.run_folder.run_dir import read_config, same_settings
from vulnsteer.experiments.study_spec import Cell, StudySpec, cell_config
from vulnsteer.io import atomic_write_text
from vulnsteer.options import Executor
from vulnsteer.progress import log
from vulnsteer.version import __version__


@dataclass(frozen=True)
class CellJob:
    """Everything a worker needs to run one cell; absolute paths, since a Ray worker has its own cwd."""

    cell: Cell
    config: RunConfig
    out: Path
    data: Path
    cache_dir: Path | None
    trust_remote_code: bool


@dataclass(frozen=True)
class StudyPlan:
    """The study folder, every cell's job in order, and which of them still have to run."""

    path: Path
    jobs: list[CellJob]
    todo: list[CellJob]


Runner = Callable[[CellJob], Path]


def cell_finished(job: CellJob) -> bool:
    """Whether the cell's folder holds a finished run of its settings (a finished run of other settings is
    refused: the study would otherwise report numbers it did not ask for)."""
    cfg = read_config(job.out)
    if cfg is None or cfg.get("status") != "finished":
        return False
    if not same_settings(cfg, job.config.settings()):
        raise VulnsteerError(f"{job.out} holds a finished run with other settings than {job.cell.name}; "
                             "choose another --out for this study, or move that folder away")
    return True


def _claim(out: Path | None) -> Path:
    """The study folder: new, empty, or one an earlier `vulnsteer study` wrote (rerun: skip and resume)."""
    if out is None:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / f"{stamp}-study"
    path = Path(out).resolve()
    if path.exists() and not path.is_dir():
        raise VulnsteerError(f"--out {out} is a file, not a folder; choose another --out")
    if path.is_dir() and any(path.iterdir()) and not (path / schema.STUDY).is_file():
        raise VulnsteerError(f"--out {out} is not empty and holds no {schema.STUDY}; choose an empty or new folder")
    return path


def _finished_or_checked(cfg: RunConfig, cell: Cell, out: Path, root: Path) -> bool:
    """Whether the cell finished earlier; if not, its checks (as `vulnsteer run` makes them) have passed."""
    if cell_finished(CellJob(cell, cfg, out, root, None, False)):
        _, records = preflight(cfg, cell.model, root)
        stale = changed_inputs((read_config(out) or {}).get("inputs"), input_hashes(cfg, records, root))
        if stale:  # its numbers are of other inputs than the study's now: never reported as this study's
            raise VulnsteerError(f"{out} holds a finished run, but {describe(stale)} changed since it ran; move "
                                 "that folder away to run the cell again")
        return True
    preflight(cfg, cell.model, root, out)
    return False


def check_executor(executor: Executor | str) -> None:
    """Refuse an executor whose package is missing before the study folder is written."""
    if Executor(executor) is Executor.RAY:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise VulnsteerError("--executor ray needs Ray: pip install -e '.[ray]' in this checkout") from None


def plan_study(spec: StudySpec, out: Path | None = None, data: Path | str | None = None,
               cache_dir: Path | None = None, trust_remote_code: bool = False) -> StudyPlan:
    """Check every cell that still has to run (its data, folds, layers and folder, as `vulnsteer run` does
    before loading), then write study.json. Torch-free: nothing slow starts before the last cell passed."""
    path = _claim(out)
    jobs, todo, root = [], [], None
    for cell in spec.cells():
        cfg = cell_config(spec, cell)
        job_out = path / schema.STUDY_CELLS / cell.name
        try:
            if root is None:  # every cell reads the same data root
                root, _ = preflight(cfg, cell.model, data)
            done = _finished_or_checked(cfg, cell, job_out, root)
        except VulnsteerError as exc:  # which cell, in the same one line
            raise type(exc)(f"study cell {cell.name}: {exc}") from None
        job = CellJob(cell, cfg, job_out, Path(root).resolve(), Path(cache_dir).resolve() if cache_dir else None,
                      trust_remote_code)
        jobs.append(job)
        if not done:
            todo.append(job)
    path.mkdir(parents=True, exist_ok=True)
    index = {"command": "study", "vulnsteer": __version__, "schema_version": schema.SCHEMA_VERSION,
             "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "spec": spec.settings(),
             "cells": [{"name": j.cell.name, "model": j.cell.model, "readout": j.cell.readout.value,
                        "fit": list(j.cell.split.fit), "test": list(j.cell.split.test),
                        "folder": f"{schema.STUDY_CELLS}/{j.cell.name}"} for j in jobs]}
    atomic_write_text(path / schema.STUDY, json.dumps(index, indent=1) + "\n")
    return StudyPlan(path, jobs, todo)


def run_cells(plan: StudyPlan, runner: Runner, executor: Executor | str = Executor.LOCAL,
              ray_address: str | None = None) -> None:
    """Run the cells still to do with `runner`, here one after another or as Ray tasks."""
    for job in plan.jobs:
        if job not in plan.todo:
            log(f"{job.cell.title}: finished earlier, skipped")
    if not plan.todo:
        return
    if Executor(executor) is Executor.RAY:
        _on_ray(plan.todo, runner, ray_address)
        return
    # One process runs every cell: cells on the same prompts (each readout of a split, a data set that is fit
    # on in one cell and tested in the next) share their passes and generated answers (activations/memo.py).
    with shared_passes():
        for job in plan.todo:
            runner(job)


def num_gpus(device: str, cluster_gpus: float) -> int:
    """GPUs a cell's Ray task asks for: 1 when its device asks for CUDA ("auto" does on a cluster with GPUs)."""
    kind = str(device).partition(":")[0]
    return int(kind == "cuda" or (kind == "auto" and cluster_gpus > 0))


def _with_threads(runner: Runner, threads: int, job: CellJob) -> None:
    """Run a cell on a Ray worker with the driver's torch thread count. Ray sets OMP_NUM_THREADS to a task's
    CPUs (1 by default), and another thread count sums in another order: a tiny run's summary moved in the
    6th digit. With the same hardware and thread count the results are identical to the local executor's."""
    import torch

    torch.set_num_threads(threads)
    runner(job)


def _on_ray(jobs: Sequence[CellJob], runner: Runner, address: str | None) -> None:
    """One Ray task per cell on an existing cluster (address, else $RAY_ADDRESS, else a local instance);
    Ray places them, no scheduling here. The first failed cell stops the study and cancels the rest."""
    try:
        import ray
    except ImportError:
        raise VulnsteerError("--executor ray needs Ray: pip install -e '.[ray]' in this checkout") from None
    started = not ray.is_initialized()
    if started:  # address None: Ray reads $RAY_ADDRESS itself, else starts a local instance
        ray.init(address=address or os.environ.get("RAY_ADDRESS") or None)
    try:
        gpus = float(ray.cluster_resources().get("GPU", 0))
        if gpus == 0 and any(num_gpus(j.config.device, gpus) for j in jobs):
            raise VulnsteerError("cells ask for --device cuda but the Ray cluster has no GPU; use device auto or cpu")
        import torch

        task = ray.remote(_with_threads)
        threads = torch.get_num_threads()
        refs = {task.options(num_gpus=num_gpus(j.config.device, gpus), name=j.cell.name).remote(runner, threads, j): j
                for j in jobs}
        for j in jobs:
            log(f"{j.cell.title}: sent to Ray")
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            try:
                ray.get(done[0])
            except ray.exceptions.RayTaskError as exc:
                for ref in pending:
                    ray.cancel(ref)
                cause = getattr(exc, "cause", None)
                raise (cause if isinstance(cause, VulnsteerError) else exc) from None
    finally:
        if started:
            ray.shutdown()
