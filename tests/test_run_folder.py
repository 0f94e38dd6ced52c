from __future__ import annotations

import json

import pytest

from vulnsteer.data.load import load_records
from vulnsteer.errors import DataError
from vulnsteer.experiments.run_folder.run_dir import RunDir


def test_run_dir_writes_valid_json_with_nan_as_null(tmp_path):
    run = RunDir.create(tmp_path / "r", "test", {"x": 1})
    run.write_json("a/b.json", {"v": float("nan"), "w": [1.0, float("inf")]})
    assert json.loads((tmp_path / "r" / "a" / "b.json").read_text()) == {"v": None, "w": [1.0, None]}
    run.write_jsonl("c.jsonl", [{"a": 1}, {"a": float("nan")}])
    assert [json.loads(x) for x in (tmp_path / "r" / "c.jsonl").read_text().splitlines()] == [{"a": 1}, {"a": None}]
    run.stage("load", 1.234)
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["stage_seconds"] == {"load": 1.23} and config["command"] == "test" and config["x"] == 1
    assert not list((tmp_path / "r").rglob("*.tmp"))


def test_load_records_by_subset_name_and_path(data_root, tmp_path):
    assert len(load_records(data_root, ["hand-crafted"])) == 48
    assert len(load_records(data_root, ["hand-crafted"], ["CWE-787"])) == 6
    pairs = tmp_path / "mine.jsonl"
    pairs.write_text(json.dumps({"id": "a", "cwe": "CWE-79", "language": "python", "vulnerable": "x = 1",
                                 "secure": "x = 2"}) + "\n")
    assert len(load_records(data_root, [str(pairs)])) == 2
    with pytest.raises(DataError, match="unknown subset"):
        load_records(data_root, ["handcrafted"])


def _run_folder(path, status="finished"):
    from vulnsteer.experiments.run_folder.folders import RUN, mark

    path.mkdir(parents=True)
    mark(path, RUN)
    (path / "config.json").write_text(json.dumps({"command": "run", "status": status}))
    (path / "report.md").write_text("old")


def test_a_folder_with_another_run_is_refused_unless_force(tmp_path):
    from vulnsteer.errors import VulnsteerError

    _run_folder(tmp_path / "r")
    with pytest.raises(VulnsteerError, match="holds another run .*--force"):
        RunDir.create(tmp_path / "r", "run", {})
    assert (tmp_path / "r" / "report.md").read_text() == "old", "nothing is touched without --force"
    run = RunDir.create(tmp_path / "r", "run", {}, force=True)
    assert not (run.path / "report.md").exists(), "force clears the old run first"
    assert json.loads((run.path / "config.json").read_text())["status"] == "running"


def test_a_non_empty_folder_that_is_not_a_run_is_always_refused(tmp_path):
    from vulnsteer.errors import VulnsteerError

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "qwen2"}')
    for force in (False, True):
        with pytest.raises(VulnsteerError, match="not a vulnsteer run folder"):
            RunDir.create(model, "run", {}, force=force)
    assert json.loads((model / "config.json").read_text()) == {"model_type": "qwen2"}


def test_default_names_are_unique_within_one_second(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    paths = {RunDir.create(None, "run", {}).path for _ in range(5)}
    assert len(paths) == 5


def test_a_second_writer_is_refused_and_a_stale_lock_is_taken_over(tmp_path):
    import os
    import subprocess
    import sys

    from vulnsteer.errors import VulnsteerError
    from vulnsteer.experiments.run_folder.run_dir import is_stale, read_config

    first = RunDir.create(tmp_path / "r", "run", {})
    with pytest.raises(VulnsteerError, match="being written by another vulnsteer process"):
        RunDir.create(tmp_path / "r", "run", {}, force=True)  # this process holds it: refused even with force
    first.finish("interrupted")
    cfg = read_config(tmp_path / "r")
    assert cfg["status"] == "interrupted" and cfg["ended_at"] and not (tmp_path / "r" / ".lock").exists()

    # A process killed mid-run leaves status "running" and its lock; both read as stale once it is gone.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    _run_folder(tmp_path / "k")
    (tmp_path / "k" / "config.json").write_text(json.dumps({"command": "run", "status": "running", "pid": pid,
                                                            "host": __import__("socket").gethostname()}))
    (tmp_path / "k" / ".lock").write_text(json.dumps({"pid": pid, "host": __import__("socket").gethostname()}))
    assert is_stale(read_config(tmp_path / "k"))
    assert RunDir.create(tmp_path / "k", "run", {}, force=True).config["pid"] == os.getpid()


@pytest.mark.parametrize("error, status", [(KeyboardInterrupt, "interrupted"), (RuntimeError, "failed")])
def test_a_run_records_how_it_ended(tiny_dirs, data_root, tmp_path, monkeypatch, error, status):
    import vulnsteer.experiments.run as run_module
    from vulnsteer.api import run
    from vulnsteer.experiments.baseline_config import BaselineConfig
    from vulnsteer.experiments.config import RunConfig
    from vulnsteer.experiments.run_folder.run_dir import read_config

    def boom(*_args):
        raise error()

    monkeypatch.setattr(run_module, "run_all", boom)
    cfg = RunConfig(baseline=BaselineConfig(cwes=("CWE-787",), generate=False), stages=())
    with pytest.raises(error):
        run(cfg, model=str(tiny_dirs["qwen2"]), data=data_root, out=tmp_path / "r", cache_dir=tmp_path / "c")
    config = read_config(tmp_path / "r")
    assert config["status"] == status and config["ended_at"] and not (tmp_path / "r" / ".lock").exists()


def test_out_is_checked_after_resolving_dotdot(tmp_path):
    """`--out NEW/../../runs/t2` is runs/t2: a finished run of other settings there is not replaced."""
    from vulnsteer.errors import VulnsteerError

    RunDir.create(tmp_path / "runs" / "t2", "run", {"x": 1}).finish("finished")
    walked = tmp_path / "a" / "NEW" / ".." / ".." / "runs" / "t2"
    with pytest.raises(VulnsteerError, match="holds another run"):
        RunDir.create(walked, "run", {"x": 2})
    assert json.loads((tmp_path / "runs" / "t2" / "config.json").read_text())["x"] == 1
    assert not (tmp_path / "a").exists(), "nothing is created on the way"


def test_a_user_folder_is_never_written_or_emptied_however_it_is_named(tmp_path):
    from vulnsteer.errors import VulnsteerError

    user = tmp_path / "o" / "userfolder"
    user.mkdir(parents=True)
    (user / "thesis.tex").write_text("mine")
    (user / "config.json").write_text(json.dumps({"command": "make", "status": "finished"}))  # looks like a run's
    for out, force in ((tmp_path / "o" / "newA" / ".." / "userfolder", False), (user, True), (user, False)):
        with pytest.raises(VulnsteerError, match="not a vulnsteer run folder"):
            RunDir.create(out, "run", {}, force=force)
    assert sorted(p.name for p in user.iterdir()) == ["config.json", "thesis.tex"]
    assert (user / "thesis.tex").read_text() == "mine"


def test_a_run_folder_is_marked_when_created_and_force_replaces_only_marked_ones(tmp_path):
    from vulnsteer.experiments.run_folder import schema
    from vulnsteer.experiments.run_folder.folders import marker

    run = RunDir.create(tmp_path / "r", "run", {})
    info = marker(run.path)
    assert info is not None and info["kind"] == "run" and info["schema_version"] == schema.SCHEMA_VERSION
    assert json.loads((run.path / schema.MARKER).read_text())["vulnsteer"]
    run.finish("finished")
    again = RunDir.create(tmp_path / "r", "run", {"y": 1}, force=True)
    assert marker(again.path) is not None and json.loads((again.path / "config.json").read_text())["y"] == 1


def test_out_inside_another_run_folder_is_refused(tmp_path):
    from vulnsteer.errors import VulnsteerError

    RunDir.create(tmp_path / "r", "run", {}).finish("finished")
    with pytest.raises(VulnsteerError, match="inside the vulnsteer run folder"):
        RunDir.create(tmp_path / "r" / "baseline" / "sub", "run", {})


def test_finished_is_written_only_after_the_report_exists(tiny_dirs, data_root, tmp_path, monkeypatch):
    """A full disk while the report is written: the run is "failed", never "finished" without its report."""
    import vulnsteer.report.document as document
    from vulnsteer.api import run
    from vulnsteer.errors import VulnsteerError
    from vulnsteer.experiments.baseline_config import BaselineConfig
    from vulnsteer.experiments.config import RunConfig
    from vulnsteer.experiments.run_folder.run_dir import read_config

    def full(path, text, fsync=False):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(document, "atomic_write_text", full)
    cfg = RunConfig(baseline=BaselineConfig(cwes=("CWE-787",), generate=False), stages=())
    with pytest.raises(VulnsteerError, match="cannot write the report"):
        run(cfg, model=str(tiny_dirs["qwen2"]), data=data_root, out=tmp_path / "r", cache_dir=tmp_path / "c")
    assert read_config(tmp_path / "r")["status"] == "failed" and not (tmp_path / "r" / "report.md").exists()
    monkeypatch.undo()
    assert run(cfg, model=str(tiny_dirs["qwen2"]), data=data_root, out=tmp_path / "r2", cache_dir=tmp_path / "c")
    assert (tmp_path / "r2" / "report.md").read_text().startswith("# vulnsteer report")
    assert read_config(tmp_path / "r2")["status"] == "finished"
