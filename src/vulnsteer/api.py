"""The library surface: a model to a steered answer in a few lines, and the whole study in one call.

    import vulnsteer as vs
    lm = vs.load_model("qwen2.5-coder-0.5b")
    records = vs.load_records(["hand-crafted"])
    vector = vs.train_steering_vector(lm, records, layers=[12], method="caa")
    with vector.apply(lm, alpha=8.0, scope="answer"):
        print(vs.answer_score(lm, records[0]))

`run` is what `vulnsteer run|baseline|probe|steer` execute, `study` what `vulnsteer study` executes: the
command line only builds their configs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vulnsteer.data.records import Record
from vulnsteer.data.root import resolve_data_root
from vulnsteer.errors import DataError
from vulnsteer.experiments.config import RunConfig
from vulnsteer.experiments.folders import check_writable, resolved
from vulnsteer.experiments.preflight import preflight
from vulnsteer.experiments.study_spec import StudySpec
from vulnsteer.options import Executor, Method

if TYPE_CHECKING:  # torch-free at import: the command line imports this module before any option check
    from vulnsteer.experiments.study import CellJob
    from vulnsteer.model.loading import LoadedModel
    from vulnsteer.vectors.steering_vector import SteeringVector


def load_model(
    name: str = "qwen2.5-coder-0.5b",
    cache_dir: Path | str | None = None,
    trust_remote_code: bool = False,
    device: str = "auto",
    dtype: str = "float32",
) -> LoadedModel:
    """A built-in name (qwen2.5-coder-0.5b, qwen2.5-coder-1.5b, gemma-3-270m, tiny-<arch>), a .gguf file, an HF
    folder or a hub id, in eval mode on `device` computing in `dtype`; with its parts located and the
    re-entry shortcut the sweep uses checked against full forwards (docs/MODELS.md)."""
    from vulnsteer.model.loading import default_cache_dir
    from vulnsteer.model.loading import load_model as _load
    from vulnsteer.steering.reentry import checked

    root = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "models"
    return checked(_load(name, cache_dir=root, trust_remote_code=trust_remote_code, device=device, dtype=dtype))


def load_records(subsets: Sequence[str] = ("hand-crafted",), cwes: Sequence[str] | None = None,
                 data: Path | str | None = None) -> list[Record]:
    """Records of SecLLMHolmes subsets, "sven", or pairs .jsonl files, from `data` (else $VULNSTEER_DATA,
    else ../shared/data beside the checkout)."""
    from vulnsteer.data.load import load_records as _load

    return _load(resolve_data_root(Path(data) if data else None), list(subsets), cwes)


def _build(lm: LoadedModel, records: Sequence[Record], template: str) -> list[Any]:
    from vulnsteer.data.secllmholmes import cwe_names
    from vulnsteer.experiments.samples import build_samples

    root = None
    try:
        root = resolve_data_root(None)
    except DataError:
        pass  # few-shot templates and CWE names need the data root; zero-shot ones do not
    return build_samples(list(records), lm, template, cwe_names(root) if root else {}, root)


def _words(lm: LoadedModel) -> Any:
    from vulnsteer.activations.scoring import AnswerWords
    from vulnsteer.data.prompts import answer_token_ids

    yes, no = answer_token_ids(lm.tokenizer)
    return AnswerWords(tuple(yes), tuple(no))


def answer_score(lm: LoadedModel, record: Record, template: str = "S1") -> float:
    """log P(yes) - log P(no) at the answer position for one record under `template` (> 0 means "vulnerable").

    One plain forward of each rendered prompt, so a surrounding `vector.apply(lm, scope="answer")` steers
    exactly the last prompt token. A file over the token budget is read in windows and scored by the
    maximum over them, as `vulnsteer run` does (docs/PROMPTS.md)."""
    import torch

    from vulnsteer.experiments.windows import pool_scores

    (sample,) = _build(lm, [record], template)
    if sample.fit.skipped:
        raise DataError(f"{record.id}: {sample.fit.note}")
    words = _words(lm)
    with torch.inference_mode():
        scores = [words.score(lm.model(input_ids=w.input_ids, logits_to_keep=1).logits[0, -1].float())
                  for w in sample.windows]
    return float(pool_scores(torch.stack(scores)))


def generate_answer(lm: LoadedModel, record: Record, template: str = "S1", max_new_tokens: int = 128) -> str:
    """The model's greedy answer to `record` under `template` (steered inside `vector.apply(lm)`); a file read
    in windows gets one answer per window, each under a header line naming its lines."""
    from vulnsteer.evaluation.generation import generate_answers
    from vulnsteer.experiments.windows import pool_generations

    (sample,) = _build(lm, [record], template)
    if sample.fit.skipped:
        raise DataError(f"{record.id}: {sample.fit.note}")
    generations = generate_answers(lm.model, lm.tokenizer, [w.prompt for w in sample.windows], max_new_tokens, 1,
                                   sort_by_length=False)
    return pool_generations(generations, sample.windows).text


def train_steering_vector(
    lm: LoadedModel,
    records: Sequence[Record],
    layers: Sequence[int] | None = None,
    method: Method | str = Method.CAA,
    template: str = "S1",
) -> SteeringVector:
    """Fit a vector on `records` (vulnerable/secure pairs for CAA and PCA) at the answer position of
    `template`'s prompts; every block when `layers` is None. Carries the model and data provenance."""
    from dataclasses import replace

    from vulnsteer.vectors.training import fit_vectors

    from vulnsteer.experiments.samples import run_samples

    sset = run_samples(_build(lm, records, template), lm, _words(lm), description="forward passes")
    chosen = list(layers) if layers is not None else list(range(lm.parts.n_layers))
    vector = fit_vectors(sset.residuals, [s.record for s in sset.samples], chosen, [method])[Method(method)]
    return replace(vector, model_id=lm.model_id, model_hash=lm.source_hash, template_id=template)


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
    t0 = time.time()
    if out is None:
        check_writable(resolved("runs"), "--out (default runs/)")
    root, records = preflight(cfg, model, data, out, force, command, cache_dir)  # before torch is imported

    from vulnsteer.experiments.context import open_context
    from vulnsteer.experiments.inputs import input_hashes
    from vulnsteer.experiments.run import run_all
    from vulnsteer.experiments.run_folder import RunDir
    from vulnsteer.report.document import write_report

    ctx = open_context(model, root, cache_dir, cfg.baseline.subsets, cfg.baseline.cwes, trust_remote_code,
                       records=records, dtype=cfg.dtype.value, device=cfg.device)
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

    check_executor(executor)
    plan = plan_study(spec, out, data, cache_dir, trust_remote_code)
    run_cells(plan, run_cell, executor, ray_address)
    from vulnsteer.report.study import write_study

    write_study(plan.path)
    return plan.path


def run_cell(job: CellJob) -> Path:
    """One study cell, as `run` runs it (on a Ray worker too); its log lines name the cell."""
    from vulnsteer.experiments.run_folder import read_config
    from vulnsteer.progress import log, prefixed

    with prefixed(job.cell.title):
        old = read_config(job.out)
        log("resuming its interrupted run" if old is not None else "started")
        t0 = time.time()
        path = run(job.config, model=job.cell.model, data=job.data, out=job.out, cache_dir=job.cache_dir,
                   trust_remote_code=job.trust_remote_code, command="run")
        log(f"finished in {time.time() - t0:.0f} s")
    return path
