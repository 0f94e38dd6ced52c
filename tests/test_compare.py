"""`vulnsteer compare` on run folders made by `vulnsteer run` on tiny models (one of them without exact
re-entry, so its steering ran as full forwards), plus a folder with parts missing."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from typer.testing import CliRunner

from vulnsteer.cli import app
from vulnsteer.model.tiny import tiny_model, tiny_tokenizer

runner = CliRunner()
RUN_ARGS = ("--no-generate", "--methods", "caa", "--n-boot", "100", "--folds", "3", "--n-random", "1")
# The full-forward fallback costs a forward per configuration and sample: two CWEs (6 scenario groups, enough
# for the probe's 5 folds) and one layer keep it short.
SCOPE = {"qwen": ("--cwe", "CWE-787", "--cwe", "CWE-89", "--cwe", "CWE-22", "--layers", "0-1")}


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def runs(data_root, tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    softcapped = root / "gemma2-softcap"
    model = tiny_model("gemma2")
    model.config.final_logit_softcapping = 0.5  # at the tiny logit scale, so re-entry is measurably inexact
    model.save_pretrained(softcapped)
    tiny_tokenizer().save_pretrained(softcapped)
    out = {"qwen": root / "run-qwen", "gemma2": root / "run-gemma2"}
    result = invoke("run", "--model", "tiny-qwen2", "--data", data_root, *RUN_ARGS, *SCOPE["qwen"], "--out", out["qwen"],
                    "--cache-dir", root / "cache")
    assert result.exit_code == 0, result.output
    # The fallback runs one full forward per configuration, sample and generated token: the library call sets
    # a short side-by-side and fluency, which the command line keeps at their defaults.
    from vulnsteer.api import run
    from vulnsteer.experiments.baseline_config import BaselineConfig
    from vulnsteer.experiments.config import RunConfig, SteerConfig

    cfg = RunConfig(baseline=BaselineConfig(cwes=("CWE-787", "CWE-89"), generate=False, n_boot=100),
                    steer=SteerConfig(layers=(1,), methods=("caa",), k_folds=3, n_random=1),
                    n_side_by_side=2, side_by_side_tokens=8, n_fluency=2)
    run(cfg, model=str(softcapped), data=data_root, out=out["gemma2"], cache_dir=root / "cache")
    partial = root / "run-partial"  # an interrupted run: no probe, no steering summary, no samples
    shutil.copytree(out["qwen"], partial)
    shutil.rmtree(partial / "probe")
    (partial / "steer" / "summary.json").unlink()
    (partial / "baseline" / "samples.jsonl").unlink()
    out["partial"] = partial
    return out


def test_tiny_builtin_name_runs_end_to_end(runs):
    config = json.loads((runs["qwen"] / "config.json").read_text())
    assert config["model"].startswith("tiny-qwen2@")
    assert config["architecture"] == {"model_type": "qwen2", "n_layers": 4, "d_model": 64, "found_by": "table",
                                      "reentry_exact": True, "reentry_note": ""}
    assert (runs["qwen"] / "steer" / "summary.json").is_file()


def test_inexact_reentry_is_said_in_config_log_and_report(runs):
    arch = json.loads((runs["gemma2"] / "config.json").read_text())["architecture"]
    assert arch["reentry_exact"] is False and "full forwards are used instead" in arch["reentry_note"]
    report = (runs["gemma2"] / "report.md").read_text()
    assert "every steered score here comes from a full forward" in report
    summary = json.loads((runs["gemma2"] / "steer" / "summary.json").read_text())
    assert summary["steered_minus_random"]["accuracy"][0] is not None


def test_compare_writes_the_side_by_side_report(runs, tmp_path):
    out = tmp_path / "cmp"
    result = invoke("compare", runs["qwen"], runs["gemma2"], runs["partial"], "--out", out)
    assert result.exit_code == 0, result.output
    md = (out / "comparison.md").read_text()
    html = (out / "comparison.html").read_text()
    assert "data:image/png;base64," in html and (out / "figures" / "probe_depth.png").is_file()
    qwen = json.loads((runs["qwen"] / "config.json").read_text())["model"]
    gemma = json.loads((runs["gemma2"] / "config.json").read_text())["model"]
    lines = md.splitlines()

    def row(start: str, after: str) -> str:
        section = lines.index(next(line for line in lines if after in line))
        return next(line for line in lines[section:] if line.startswith(f"| {start}"))

    # the same model twice: the folder names tell the two apart
    assert f"{qwen} (run-qwen)" in md and f"{qwen} (run-partial)" in md and gemma in md
    assert "full forwards (not exact)" in row(gemma, "## Runs compared")
    # a CWE with fewer than MIN_GROUPS scenario groups shows its value without an interval
    assert re.search(r"\| CWE-787 \| [-0-9.]+ \[(?:[-0-9.]+, [-0-9.]+|n/a)\] \|", md)
    steer_qwen = row(f"{qwen} (run-qwen)", "## Steering")
    assert steer_qwen.count("[") >= 4 and "missing" not in steer_qwen
    assert row(f"{qwen} (run-partial)", "## Steering").count("missing") == 6
    assert row(f"{qwen} (run-partial)", "Best probe layer").count("missing") == 5
    # tokens/s is prompt tokens over the baseline forward stage's seconds
    config = json.loads((runs["gemma2"] / "config.json").read_text())
    samples = [json.loads(x) for x in (runs["gemma2"] / "baseline" / "samples.jsonl").read_text().splitlines()]
    tokens = sum(s["n_tokens"] for s in samples if not s["skipped"])
    cost = row(gemma, "## Cost")
    assert f"| {tokens} |" in cost and f"| {tokens / config['stage_seconds']['baseline_forward']:.0f} |" in cost
    partial_cost = row(f"{qwen} (run-partial)", "## Cost")
    assert partial_cost.endswith("| missing |") and "prefill only" in md


def test_compare_refuses_a_folder_that_is_not_there(tmp_path):
    result = runner.invoke(app, ["compare", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error:") and "not a run folder" in result.stderr


def _fake_run(path, **config):
    """A run folder as `vulnsteer run` leaves it, reduced to its marker and config.json."""
    from vulnsteer.experiments.run_folder.folders import RUN, mark

    path.mkdir(parents=True)
    mark(path, RUN)
    (path / "config.json").write_text(json.dumps({"command": "run", "model": "m", "status": "finished",
                                                  "wall_seconds": 12.0, **config}))
    return path


def _one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and len(result.stderr.strip().splitlines()) == 1, result.stderr
    return last


def test_compare_out_never_writes_into_a_data_root_a_user_folder_or_a_run_folder(data_root, tmp_path):
    run = _fake_run(tmp_path / "run")
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    fake_root = tmp_path / "data"
    (fake_root / "secllmholmes").mkdir(parents=True)
    before = sorted(p.name for p in data_root.iterdir())
    for out, says in ((data_root, "data root"), (fake_root / "new", "data root"), (user, "not empty"),
                      (run, "run folder"), (run / "cmp", "run folder"), (tmp_path / "x" / ".." / "mine", "not empty")):
        assert says in _one_line_error(runner.invoke(app, ["compare", str(run), "--out", str(out)])), out
    assert sorted(p.name for p in data_root.iterdir()) == before
    assert sorted(p.name for p in user.iterdir()) == ["notes.txt"] and not (fake_root / "new").exists()
    assert not (run / "comparison.md").exists() and not (run / "cmp").exists()
    # an earlier comparison's folder is written again
    for _ in range(2):
        assert runner.invoke(app, ["compare", str(run), "--out", str(tmp_path / "cmp")]).exit_code == 0


def test_compare_refuses_a_non_run_a_corrupt_or_a_study_folder(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "a.txt").write_text("x")
    corrupt = _fake_run(tmp_path / "corrupt")
    (corrupt / "config.json").write_text("{not json")
    study = tmp_path / "study"
    study.mkdir()
    (study / "study.json").write_text(json.dumps({"command": "study", "cells": []}))
    for folder, says in ((plain, "no config.json"), (corrupt, "corrupt"), (study, "study folder")):
        result = runner.invoke(app, ["compare", str(folder), "--out", str(tmp_path / "o")])
        assert says in _one_line_error(result)
    assert not (tmp_path / "o").exists()


def test_compare_marks_a_killed_run_unfinished_and_its_wall_time_partial(tmp_path):
    import subprocess
    import sys

    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    killed = _fake_run(tmp_path / "killed", status="running", pid=dead, host=__import__("socket").gethostname(),
                       model="k")
    done = _fake_run(tmp_path / "done")
    result = runner.invoke(app, ["compare", str(done), str(killed), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    md = (tmp_path / "o" / "comparison.md").read_text()
    runs_row = next(line for line in md.splitlines() if line.startswith("| k |"))
    assert "UNFINISHED" in runs_row and "killed" in runs_row
    cost = [line for line in md.splitlines() if line.startswith("| k |")][-1]
    assert "12 (partial: unfinished)" in cost
    done_cost = [line for line in md.splitlines() if line.startswith("| m |")][-1]
    assert "| 12 |" in done_cost and "partial" not in done_cost
