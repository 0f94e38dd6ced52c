"""A study end to end on a tiny model: cells are ordinary run folders, a rerun skips the finished ones, an
interrupted study resumes to the same study.md, and the Ray executor gives what the local one gives."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import replace

import pytest
from typer.testing import CliRunner

import vulnsteer.experiments.run_folder.checkpoint as checkpoint
from vulnsteer.api import study
from vulnsteer.cli import app
from vulnsteer.errors import VulnsteerError
from vulnsteer.experiments.study import num_gpus, plan_study
from vulnsteer.experiments.study_spec import load_spec

CELLS = ["tiny-qwen2__answer__hand-crafted__crossfit", "tiny-qwen2__code-mean__hand-crafted__crossfit"]
SAME = ["study.md", *(f"cells/{c}/{f}" for c in CELLS for f in ("probe/curve.json", "steer/summary.json",
                                                                 "baseline/summary.json", "steer/test.jsonl"))]


def _results(path):
    """The file's text with wall times masked: a resumed or Ray run takes its own time, its results must not differ."""
    return re.sub(r"\| \d+\.\d min \|", "| <wall> |", path.read_text())


def test_each_cell_is_a_finished_run_folder_carrying_its_readout(tiny_study):
    index = json.loads((tiny_study / "study.json").read_text())
    assert [c["name"] for c in index["cells"]] == CELLS
    for name, readout in zip(CELLS, ("answer", "code-mean")):
        cfg = json.loads((tiny_study / "cells" / name / "config.json").read_text())
        assert cfg["status"] == "finished" and cfg["command"] == "run" and cfg["readout"] == readout
        assert cfg["fit_on"] == [] and cfg["test_on"] == [] and cfg["baseline"]["subsets"] == ["hand-crafted"]
        assert (tiny_study / "cells" / name / "report.md").is_file()
    md = (tiny_study / "study.md").read_text()
    assert all(name in md for name in CELLS) and (tiny_study / "figures" / "study_probe_curves.png").is_file()


def test_a_rerun_skips_finished_cells(tiny_study, study_toml, data_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = {c: (tiny_study / "cells" / c / "config.json").stat().st_mtime_ns for c in CELLS}
    md = (tiny_study / "study.md").read_text()
    result = CliRunner().invoke(app, ["study", "--spec", str(study_toml), "--data", str(data_root), "--out",
                                      str(tiny_study), "--cache-dir", str(tmp_path / "cache")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == (f"study: 2 cells (0 to run) of tiny-qwen2, executor local, data "
                                             f"{data_root.resolve()}, study folder {tiny_study.resolve()}")
    table = result.stdout.split("Held-out results per cell")[1]  # study prints its table, as run does
    rows = [line for line in table.splitlines() if re.match(r"│\s*[12]\s*│", line)]  # rows 1 and 2 (cells fold)
    assert [re.match(r"│\s*(\d)", r).group(1) for r in rows] == ["1", "2"], table
    assert [line for line in result.stderr.splitlines() if line.startswith("cell ")] == [
        f"cell 1/2 {CELLS[0]}: finished earlier, skipped", f"cell 2/2 {CELLS[1]}: finished earlier, skipped"]
    assert {c: (tiny_study / "cells" / c / "config.json").stat().st_mtime_ns for c in CELLS} == before
    assert not (tmp_path / "cache").exists(), "no model was loaded"
    assert (tiny_study / "study.md").read_text() == md


def test_an_interrupted_study_resumes_to_the_same_table(tiny_study, study_toml, data_root, tmp_path, monkeypatch,
                                                        capsys):
    save = checkpoint.RunFoldStore.save

    def interrupted(self, fold, result):  # the second cell stops right after saving fold 0 of 3
        save(self, fold, result)
        if fold == 0 and "code-mean" in self.run.path.name:
            raise KeyboardInterrupt

    spec, out = load_spec(study_toml), tmp_path / "study"
    monkeypatch.setattr(checkpoint.RunFoldStore, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        study(spec, out, data_root, tmp_path / "cache")
    monkeypatch.undo()
    cell = out / "cells" / CELLS[1]
    cfg = json.loads((cell / "config.json").read_text())
    assert cfg["status"] == "interrupted" and not (out / "study.md").exists()
    # what SIGKILL leaves instead: "running", by a process that is gone, with its lock
    gone = subprocess.Popen(["true"])
    gone.wait()
    (cell / "config.json").write_text(json.dumps({**cfg, "status": "running", "pid": gone.pid}))
    (cell / ".lock").write_text(json.dumps({"pid": gone.pid, "host": cfg["host"]}))
    capsys.readouterr()

    study(spec, out, data_root, tmp_path / "cache")
    log = capsys.readouterr().err
    assert f"cell 1/2 {CELLS[0]}: finished earlier, skipped" in log
    assert f"cell 2/2 {CELLS[1]}: resuming its interrupted run" in log
    assert f"cell 2/2 {CELLS[1]}: steering fold 0: reused from the interrupted run" in log
    assert json.loads((cell / "config.json").read_text())["status"] == "finished"
    for name in SAME:
        assert _results(out / name) == _results(tiny_study / name), name


def test_the_ray_executor_gives_the_same_table(tiny_study, study_toml, data_root, tmp_path):
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[ray]' (or bash scripts/setup.sh --dev)")
    ray.init(num_cpus=1, include_dashboard=False)
    try:
        out = study(load_spec(study_toml), tmp_path / "study", data_root, tmp_path / "cache", executor="ray")
    finally:
        ray.shutdown()
    for name in SAME:
        assert _results(out / name) == _results(tiny_study / name), name


def test_a_finished_cell_of_other_settings_or_a_foreign_folder_is_refused(tiny_study, study_toml, data_root, tmp_path):
    spec = load_spec(study_toml)
    other = replace(spec, run=replace(spec.run, baseline=replace(spec.run.baseline, n_boot=200)))
    with pytest.raises(VulnsteerError, match="holds a finished run with other settings"):
        plan_study(other, tiny_study, data_root)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(VulnsteerError, match="holds no study.json"):
        plan_study(spec, tmp_path, data_root)
    assert plan_study(spec, tiny_study, data_root).todo == []


@pytest.mark.parametrize("device, cluster_gpus, expected", [
    ("cuda", 0, 1), ("cuda:0", 4, 1), ("auto", 2, 1), ("auto", 0, 0), ("cpu", 8, 0), ("mps", 0, 0),
])
def test_a_cell_asks_ray_for_a_gpu_when_its_device_asks_for_cuda(device, cluster_gpus, expected):
    assert num_gpus(device, cluster_gpus) == expected


def test_a_cell_with_one_label_data_is_refused_before_any_model_loads_naming_the_cell(data_root, tmp_path):
    vuln = tmp_path / "vuln.jsonl"
    vuln.write_text("".join(json.dumps({"id": f"v{i}", "cwe": "CWE-89", "language": "python", "code": f"q = 'x' + u{i}",
                                        "label": 1}) + "\n" for i in range(6)))
    spec_path = tmp_path / "spec.toml"
    spec_path.write_text('models = ["tiny-qwen2"]\nreadouts = ["answer"]\n\n[[cells]]\ncrossfit = ["hand-crafted"]\n\n'
                         '[[cells]]\ncrossfit = ["vuln.jsonl"]\n\n[run]\ncwes = ["CWE-89"]\n'
                         'folds = 3\n')
    with pytest.raises(VulnsteerError, match=r"study cell \S*vuln\S*: .*all \d+ records are labelled vulnerable"):
        plan_study(load_spec(spec_path), tmp_path / "study", data_root)
    assert not (tmp_path / "study" / "study.json").exists()


def test_study_on_ray_without_ray_leaves_no_study_folder(study_toml, data_root, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "study"
    code = ("import sys; sys.modules['ray'] = None\nfrom vulnsteer.cli import app\n"
            "app(sys.argv[1:], prog_name='vulnsteer')")
    proc = subprocess.run([sys.executable, "-c", code, "study", "--spec", str(study_toml), "--data", str(data_root),
                           "--out", str(out), "--executor", "ray"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--executor ray needs Ray" in proc.stderr, proc.stderr
    assert not out.exists(), "nothing is written before the executor is known to work"
