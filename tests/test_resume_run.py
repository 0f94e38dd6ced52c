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

from vulnsteer.experiments.folders import RUN, mark

ARGS = ["run", "--cwe", "CWE-787,CWE-89,CWE-22", "--folds", "3", "--layers", "1,2", "--methods", "caa,pca",
        "--max-new-tokens", "4", "--n-boot", "100"]
OUTPUTS = ["baseline/samples.jsonl", "baseline/summary.json", "probe/curve.json", "steer/sweep.csv",
           "steer/test.jsonl", "steer/summary.json", "steer/choices.json", "steer/generations.jsonl"]

# Runs the CLI, but stops dead (sleeps, to be SIGKILLed) right after the sweep saved fold 1 of 3.
_STALL_AFTER_FOLD_1 = """
import sys, time
from pathlib import Path
import vulnsteer.experiments.checkpoint as cp
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
