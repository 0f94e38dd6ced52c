"""study.md and study.html: every cell of a study side by side, read back from its run folders
(docs/STUDY.md); nothing is re-run. A cell that did not finish shows what it wrote and says so."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vulnsteer.errors import DataError
from vulnsteer.experiments.run_folder import schema
from vulnsteer.experiments.run_folder.reader import Run
from vulnsteer.report import plots
from vulnsteer.report.blocks import Block, Fig, Section, Text
from vulnsteer.report.document import random_weights_warning, write_document
from vulnsteer.report.results import RunResult, cell, mde_cell, read_result
from vulnsteer.report.tables import TableData

HOW_TO_READ = (
    "Every number is held out, with its 95% cluster-bootstrap interval. Baseline AUROC: the unsteered answer "
    "score log P(yes) - log P(no) on the data under test. Probe: a logistic probe whose layer was chosen on the "
    "validation fold, scored on the test fold. Steered - random: the chosen steering minus a random direction "
    "of the same scale (all its draws pooled, each paired with its own file). An interval that includes 0 does "
    "not show that the direction has no effect: it rules out only changes beyond its ends."
)
MDE_NOTE = ("MDE: the steered - random difference the run's design detects with 80% power (minimal detectable "
            "effect, from its summary), a property of the design; what the data rule out is the interval's far "
            "end, not the MDE.")


@dataclass(frozen=True)
class StudyCell:
    """One cell as study.json lists it."""

    name: str
    model: str
    readout: str
    fit: tuple[str, ...]
    test: tuple[str, ...]
    folder: str

    @property
    def split(self) -> str:
        fit = " + ".join(self.fit)
        return f"fit {fit} -> test {' + '.join(self.test)}" if self.test else f"cross-fitted over {fit}"


def read_cells(study_dir: Path) -> list[StudyCell]:
    """The cells study.json lists, in the study's order."""
    index = Run(study_dir).json(schema.STUDY)
    if not isinstance(index, dict) or not isinstance(index.get("cells"), list):
        raise DataError(f"{study_dir}: no readable {schema.STUDY}; pass a folder vulnsteer study wrote")
    try:
        return [StudyCell(str(c["name"]), str(c["model"]), str(c["readout"]), tuple(c["fit"]), tuple(c["test"]),
                          str(c["folder"])) for c in index["cells"]]
    except (KeyError, TypeError):
        raise DataError(f"{study_dir / schema.STUDY}: a cell lacks name, model, readout, fit, test or folder; "
                        "run vulnsteer study again to rewrite it") from None


def _status(result: RunResult | None) -> str:
    if result is None:
        return "not run"
    return "finished" if result.unfinished is None else f"unfinished ({result.unfinished})"


def _cells_table(cells: list[StudyCell], results: dict[str, RunResult | None]) -> TableData:
    table = TableData("Cells", ["#", "cell", "status", "run folder"])
    table.rows = [[str(i), c.name, _status(results[c.name]), c.folder] for i, c in enumerate(cells, start=1)]
    table.links = {(i, 3): link for i, c in enumerate(cells) if (link := _report_link(c, results[c.name]))}
    return table


def _report_link(c: StudyCell, result: RunResult | None) -> str | None:
    """The cell's report (relative to the study folder, no suffix) where the cell wrote one."""
    if result is None or not (result.path / schema.REPORT_HTML).is_file():
        return None
    return f"{Path(c.folder).as_posix()}/{Path(schema.REPORT_HTML).stem}"


def _results_table(cells: list[StudyCell], results: dict[str, RunResult | None]) -> TableData:
    with_mde = any(r is not None and any(e.mde is not None for e in r.steered_minus_random.values())
                   for r in results.values())
    cols = ["#", "model", "readout", "data", "baseline AUROC", "probe AUROC (held out)", "probe accuracy (held out)",
            "steered - random accuracy", *(["MDE accuracy"] if with_mde else []), "steered - random AUROC",
            *(["MDE AUROC"] if with_mde else [])]
    table = TableData("Held-out results per cell (95% intervals)", cols, note=MDE_NOTE if with_mde else "")
    for i, c in enumerate(cells, start=1):
        r = results[c.name]
        row = [str(i), c.model, c.readout, c.split]
        if (link := _report_link(c, r)) is not None:
            table.links[(i - 1, 0)] = link
        if r is None:
            table.rows.append(row + ["not run"] * (len(cols) - len(row)))
            continue
        row += [cell(r.baseline_auroc), cell(r.probe_auroc), cell(r.probe_accuracy)]
        for metric in ("accuracy", "auroc"):
            row.append(cell(r.steered_minus_random.get(metric)))
            if with_mde:
                row.append(mde_cell(r.steered_minus_random.get(metric)))
        table.rows.append(row)
    return table


def _steering_table(cells: list[StudyCell], results: dict[str, RunResult | None]) -> TableData:
    """Per cell: the probe curve against its shuffled control, conditional steering against the unsteered
    answer, P-C, and what the cell cost."""
    cols = ["#", "cell", "probe curve: best / shuffled max", "conditional - unsteered accuracy", "MDE",
            "conditional - unsteered AUROC", "MDE", "P-C baseline", "P-C steered", "precision", "wall time"]
    table = TableData("Conditional steering, pairs and cost per cell", cols, note=(
        "Probe curve: the grouped-CV curve's best layer against the highest AUROC any label-shuffled probe reached "
        "at any layer (a best below that maximum is not evidence of a readable signal). Conditional - unsteered: "
        "paired over the test files, 95% interval, MDE at 80% power. P-C: PrimeVul's pairs both right. Wall time: "
        "the cell's own; cells after the first of a split reuse its passes (activations/memo.py)."))
    for i, c in enumerate(cells, start=1):
        r = results[c.name]
        if r is None:
            table.rows.append([str(i), c.name] + ["not run"] * (len(cols) - 2))
            continue
        best = max((v for v in r.curve.auroc if v is not None), default=None) if r.curve else None
        probe = "missing" if best is None or r.shuffled_max is None else f"{best:.2f} / {r.shuffled_max:.2f}"
        cond, pc = r.conditional_delta or {}, r.pairs_both_right or {}
        wall = "missing" if r.wall_seconds is None else f"{r.wall_seconds / 60:.1f} min"
        table.rows.append([str(i), c.name, probe, cell(cond.get("accuracy")), mde_cell(cond.get("accuracy")),
                           cell(cond.get("auroc")), mde_cell(cond.get("auroc")), cell(pc.get("baseline")),
                           cell(pc.get("steered")), r.dtype or "missing", wall])
    return table


def _files_table(cells: list[StudyCell], results: dict[str, RunResult | None]) -> TableData:
    """Per cell, the files its numbers rest on: what the long-file policy kept and dropped, and how many files
    have a generated answer."""
    cols = ["#", "cell", "long files", "files kept", "files dropped", "pairs kept / dropped / split",
            "generated answers"]
    table = TableData("Files per cell (baseline/samples.jsonl)", cols, note=(
        "Files per class (vulnerable, secure). A split pair lost one side to the long-file policy; skip-pairs "
        "drops whole pairs. Generated answers: every evaluated file, or the seeded class-balanced "
        "--generate-sample sample (the answer score covers every kept file)."))
    for i, c in enumerate(cells, start=1):
        r = results[c.name]
        k = None if r is None else r.kept
        if r is None or k is None:
            table.rows.append([str(i), c.name] + ["not run"] * (len(cols) - 2))
            continue
        g = r.generated
        made = ("none" if g is None else f"all {g.evaluated}" if g.sample is None
                else f"{g.generated.text()} of {g.evaluated}")
        table.rows.append([str(i), c.name, r.long_files or "missing", k.kept.text(), k.dropped.text(),
                           f"{k.pairs_kept} / {k.pairs_dropped} / {k.pairs_split}", made])
    return table


def _figure(cells: list[StudyCell], results: dict[str, RunResult | None], study_dir: Path) -> list[Block]:
    panels: dict[str, dict] = {}
    for c in cells:
        r = results[c.name]
        if r is not None and r.curve is not None:
            panels.setdefault(f"{c.model}: {c.split}", {})[c.readout] = r.curve
    if not panels:
        return [Text("No cell has written probe/curve.json yet.")]
    path = plots.study_probe_plot(panels, study_dir / schema.STUDY_PROBE_FIGURE)
    return [Fig(path, "probe AUROC by layer, one line per readout, with the shuffled-label band"),
            Text("Grouped-CV probe AUROC per layer on the data each cell studies; the shaded band spans the "
                 "label-shuffled probes (mean to max over shuffles) in the line's colour. A peak inside its band "
                 "is not evidence of a readable signal.")]


def _read(study_dir: Path) -> tuple[list[StudyCell], dict[str, RunResult | None]]:
    cells = read_cells(study_dir)
    return cells, {c.name: read_result(study_dir / c.folder) if (study_dir / c.folder / schema.CONFIG).is_file()
                   else None for c in cells}


def results_table(study_dir: Path) -> TableData:
    """The study's held-out results, one row per cell: what `vulnsteer study` prints when it ends."""
    return _results_table(*_read(Path(study_dir)))


def write_study(study_dir: Path) -> tuple[Path, Path]:
    """Write study_dir/study.md and study_dir/study.html (the figure under study_dir/figures)."""
    study_dir = Path(study_dir)
    cells, results = _read(study_dir)
    done = sum(_status(r) == "finished" for r in results.values())
    title = f"vulnsteer study: {len(cells)} cells" + ("" if done == len(cells) else f" ({done} finished)")
    sections = [
        Section("Results side by side", [_results_table(cells, results), Text(HOW_TO_READ)]),
        Section("Conditional steering, pairs and cost", [_steering_table(cells, results)]),
        Section("Probe AUROC by layer", _figure(cells, results, study_dir)),
        Section("Files per cell", [_files_table(cells, results)]),
        Section("Cells", [_cells_table(cells, results),
                          Text("Each cell is an ordinary run folder with its own report (vulnsteer report); a "
                               "cell's # and run folder link to it where it was written.")]),
    ]
    tiny = sorted({c.model for c in cells if c.model.startswith("tiny-")})
    lead = [w for m in tiny if (w := random_weights_warning(m))]
    return write_document(title, sections, study_dir, Path(schema.STUDY_MD).stem, lead)
