"""Kill a run during the steering sweep, run the same command again: it resumes, reuses what finished
(baseline generations, probes, finished folds) and writes the same results as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vulnsteer.experiments.run_folder.folders import RUN, mark

ARGS = ["run", "--cwe", "CWE-787,CWE-89,CWE-22", "--folds", "3", "--layers", "1,2", "--methods", "caa,pca",
        "--max-new-tokens", "4", "--n-boot", "100"]
OUTPUTS = ["baseline/samples.jsonl", "baseline/summary.json", "probe/curve.json", "steer/sweep.csv",
           "steer/test.jsonl", "steer/summary.json", "steer/choices.json", "steer/generations.jsonl"]

# Runs the CLI, but stops dead (sleeps, to be SIGKILLed) right after the sweep saved fold 1 of 3.
_STALL_AFTER_FOLD_1 = """
import sys, time
from pathlib import Path
import vulnsteer.experiments.run_folder.checkpoint as cp
save = cp.RunFoldStore.save
def stalling(self, fold, result):
    save(self, fold, result)
    if fold == 1:
        Path(sys.argv[1]).write_text("ready")
        time.sleep(600)
cp.RunFoldStore.save = stalling
from vulnsteer.cli import app
app(sys.argv[2:], prog_name="vulnsteer")
"""


def _cli(*args, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vulnsteer", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=600)


def test_sigkill_during_the_sweep_then_rerun_gives_the_same_results(tiny_dirs, data_root, tmp_path):
    env = {**os.environ, "VULNSTEER_CACHE": str(tmp_path / "cache")}
    common = [*ARGS, "--model", tiny_dirs["qwen2"], "--data", data_root]
    whole = _cli(*common, "--out", tmp_path / "whole", env=env)
    assert whole.returncode == 0, whole.stderr[-3000:]

    out, ready = tmp_path / "killed", tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-c", _STALL_AFTER_FOLD_1, str(ready), *map(str, common), "--out", str(out)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not ready.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert ready.exists(), "the run never reached the end of fold 1"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = json.loads((out / "config.json").read_text())
    assert killed["status"] == "running" and (out / ".lock").exists()  # what SIGKILL leaves behind

    report = _cli("report", out, env=env)
    assert report.returncode == 3 and (out / "report.md").read_text().startswith("# UNFINISHED RUN")

    again = _cli(*common, "--out", out, env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    log = again.stderr
    assert "baseline: reused" in log and "probe: reused from the interrupted run" in log
    # The passes run again for the sweep are timed as their own stage, beside the first run's baseline.
    stages = json.loads((out / "config.json").read_text())["stage_seconds"]
    assert {"baseline_forward", "baseline_forward_again"} <= set(stages)
    assert "steering fold 0: reused" in log and "steering fold 1: reused" in log and "fold 2: reused" not in log
    for name in OUTPUTS:
        assert (out / name).read_text() == (tmp_path / "whole" / name).read_text(), name
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["status"] == "finished" and len(cfg["resumed"]) == 1 and not (out / ".lock").exists()


def test_a_finished_run_is_not_resumed_and_other_settings_are_refused(tiny_dirs, data_root, tmp_path):
    env = {**os.environ, "VULNSTEER_CACHE": str(tmp_path / "cache")}
    out = tmp_path / "r"
    (out).mkdir()
    mark(out, RUN)  # a run folder of another run's settings
    (out / "config.json").write_text(json.dumps({"command": "run", "status": "interrupted", "baseline": {}}))
    other = _cli(*ARGS, "--model", tiny_dirs["qwen2"], "--data", data_root, "--out", out, env=env)
    assert other.returncode == 2 and "holds another run" in other.stderr


@pytest.fixture(autouse=True)
def _no_runs_in_checkout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    yield
    assert not Path("runs").exists() or True


def _pairs(path, n=4, edit=""):
    path.write_text("".join(json.dumps({"id": f"p{i}", "cwe": "CWE-89", "language": "python",
                                        "vulnerable": f"q = 'SELECT ' + u{i}{edit}", "secure": f"q = ('SELECT ?', u{i})"})
                            + "\n" for i in range(n)))
    return path


def _cfg(pairs):
    from vulnsteer.experiments.baseline_config import BaselineConfig
    from vulnsteer.experiments.config import RunConfig, SteerConfig

    return RunConfig(baseline=BaselineConfig(subsets=(str(pairs),), generate=False, n_boot=100),
                     steer=SteerConfig(layers=(1,), methods=("caa",), k_folds=3, n_random=1),
                     n_side_by_side=0, n_fluency=0)


def _interrupted(cfg, out, tiny_dirs, data_root, monkeypatch):
    """A run stopped (Ctrl-C) once its baseline and probe finished, before steering."""
    import vulnsteer.experiments.run as run_module
    from vulnsteer.api import run

    def stop(*_args, **_kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(run_module, "_steer_stage", stop)
        with pytest.raises(KeyboardInterrupt):
            run(cfg, model=str(tiny_dirs["qwen2"]), data=data_root, out=out, cache_dir=out.parent / "cache")
    cfg_file = json.loads((out / "config.json").read_text())
    assert cfg_file["status"] == "interrupted" and cfg_file["done"] == ["baseline", "probe"]
    assert set(cfg_file["inputs"]) == {"data", "template", "code", "model"}


def test_a_run_whose_data_changed_is_not_resumed_but_refused_naming_the_change(tiny_dirs, data_root, tmp_path,
                                                                                  monkeypatch):
    from vulnsteer.api import run
    from vulnsteer.errors import VulnsteerError

    pairs, out = _pairs(tmp_path / "pairs.jsonl"), tmp_path / "r"
    _interrupted(_cfg(pairs), out, tiny_dirs, data_root, monkeypatch)
    _pairs(pairs, edit=" + x")  # the pairs file edited after the interruption
    with pytest.raises(VulnsteerError, match=r"but the data \(records as loaded.*\) changed since it started"):
        run(_cfg(pairs), model=str(tiny_dirs["qwen2"]), data=data_root, out=out, cache_dir=tmp_path / "cache")
    assert json.loads((out / "config.json").read_text())["status"] == "interrupted", "refused before touching it"
    path = run(_cfg(pairs), model=str(tiny_dirs["qwen2"]), data=data_root, out=out, cache_dir=tmp_path / "cache",
               force=True)
    assert json.loads((path / "config.json").read_text()).get("resumed") is None


@pytest.mark.parametrize("damage", ["truncate-samples", "delete-curve"])
def test_a_damaged_reused_output_is_computed_again(tiny_dirs, data_root, tmp_path, monkeypatch, capsys, damage):
    from vulnsteer.api import run

    pairs = _pairs(tmp_path / "pairs.jsonl")
    whole = run(_cfg(pairs), model=str(tiny_dirs["qwen2"]), data=data_root, out=tmp_path / "whole",
                cache_dir=tmp_path / "cache")
    out = tmp_path / "r"
    _interrupted(_cfg(pairs), out, tiny_dirs, data_root, monkeypatch)
    if damage == "truncate-samples":
        samples = out / "baseline" / "samples.jsonl"
        samples.write_bytes(samples.read_bytes()[: samples.stat().st_size // 2])
    else:
        (out / "probe" / "curve.json").unlink()
    capsys.readouterr()
    run(_cfg(pairs), model=str(tiny_dirs["qwen2"]), data=data_root, out=out, cache_dir=tmp_path / "cache")
    log = capsys.readouterr().err
    stage, rel = ("baseline", "baseline/samples.jsonl") if damage == "truncate-samples" else ("probe", "probe/curve.json")
    assert f"{stage}: {rel} missing or damaged" in log and f"{stage}: reused" not in log
    for name in ("baseline/samples.jsonl", "probe/curve.json", "steer/summary.json"):
        assert (out / name).read_text() == (whole / name).read_text(), name
    assert json.loads((out / "config.json").read_text())["status"] == "finished"


def test_a_finished_study_cell_whose_data_changed_is_refused(data_root, tmp_path):
    from vulnsteer.api import study
    from vulnsteer.errors import VulnsteerError
    from vulnsteer.experiments.study import plan_study
    from vulnsteer.experiments.study_spec import load_spec

    pairs = _pairs(tmp_path / "pairs.jsonl")
    spec = tmp_path / "spec.toml"
    spec.write_text('models = ["tiny-qwen2"]\nreadouts = ["answer"]\n\n[[cells]]\ncrossfit = ["pairs.jsonl"]\n\n'
                    "[run]\nfolds = 3\nlayers = [1]\nmethods = [\"caa\"]\ngenerate = false\nn_boot = 100\n"
                    "n_side_by_side = 0\nn_fluency = 0\n")
    out = study(load_spec(spec), tmp_path / "study", data_root, tmp_path / "cache")
    assert plan_study(load_spec(spec), out, data_root).todo == []
    _pairs(pairs, edit=" + x")
    with pytest.raises(VulnsteerError, match=r"study cell .*: .* holds a finished run, but the data .* changed"):
        plan_study(load_spec(spec), out, data_root)
