"""The command line end to end on tiny models and the real data; bad input gives one line and exit code 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vulnsteer.cli import app
from vulnsteer.model import sources
from vulnsteer.options import Readout, Scope

runner = CliRunner()


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    """Commands write runs/ under the working directory: keep that out of the checkout."""
    monkeypatch.chdir(tmp_path)


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert result.stderr.strip().splitlines()[-1] == errors[0], "the error is the last thing printed"
    return errors[0]


def test_data_inventory_matches_the_shared_readme(data_root):
    result = invoke("data", "--data", data_root)
    assert result.exit_code == 0, result.output
    rows = {tuple(c.strip() for c in line.split("│")[1:4]): line for line in result.stdout.splitlines() if "│" in line}
    assert "48" in rows[("hand-crafted", "all", "24")]
    assert "132" in rows[("augmented-non-trivial", "all", "72")]
    assert "1440" in rows[("sven", "all", "720")]


def test_baseline_on_tiny_starcoder_writes_a_complete_run_folder(data_root, tiny_dirs, tmp_path):
    out = tmp_path / "run"
    result = invoke(
        "baseline", "--model", tiny_dirs["gpt_bigcode"], "--data", data_root, "--max-new-tokens", "4",
        "--n-boot", "100", "--out", out, "--cache-dir", tmp_path / "cache",
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == (  # the opening line says what runs where, before anything slow
        f"baseline: model {tiny_dirs['gpt_bigcode']}, float32 on device auto, data {data_root.resolve()} "
        f"(48 files: hand-crafted), run folder {out}")
    assert "generating: 0/192 tokens" in result.stderr, "generation progress counts tokens (48 files x 4)"
    rows = [json.loads(line) for line in (out / "baseline" / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 48 and {r["label"] for r in rows} == {0, 1}
    assert len({round(r["score"], 6) for r in rows}) > 1, "scores must not be constant"
    assert all(r["generation_verdict"] in ("yes", "no", "unknown") for r in rows)
    summary = json.loads((out / "baseline" / "summary.json").read_text())
    assert set(summary) == {"score", "generation"} and "CWE-787" in summary["score"]
    assert (out / "published.json").is_file() and (out / "report.html").is_file()
    config = json.loads((out / "config.json").read_text())
    assert config["model"].startswith("gpt_bigcode@") and "baseline_forward" in config["stage_seconds"]
    from vulnsteer.model.precision import DEFAULT_PRECISION

    assert config["dtype"] == DEFAULT_PRECISION.value and config["device"]  # auto resolved to a real device


@pytest.mark.parametrize("option, value", [("--dtype", "int8"), ("--dtype", "fp16"), ("--device", "tpu")])
def test_bad_dtype_or_device(data_root, tmp_path, option, value):
    line = one_line_error(invoke("probe", option, value, "--data", data_root, "--cache-dir", tmp_path))
    assert repr(value) in line


def test_run_on_tiny_qwen_reports_every_condition(data_root, tiny_dirs, tmp_path):
    out = tmp_path / "run"
    result = invoke(
        "run", "--model", tiny_dirs["qwen2"], "--data", data_root, "--cwe", "CWE-787", "--cwe", "CWE-89",
        "--cwe", "CWE-22", "--no-generate", "--layers", "0-2", "--n-boot", "100", "--folds", "3", "--train", "augmented",
        "--out", out, "--cache-dir", tmp_path / "cache",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "steer" / "summary.json").read_text())
    assert set(summary["conditions"]) == {"baseline", "baseline_calibrated", "steered", "random", "opposite", "probe",
                                           "amplify", "conditional"}
    assert summary["conditions"]["baseline"]["all"]["n"][0] == 18
    test_rows = [json.loads(line) for line in (out / "steer" / "test.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in test_rows) == sorted({r["id"] for r in test_rows})  # each tested once
    choices = json.loads((out / "steer" / "choices.json").read_text())
    assert len(choices) == 3 and all(0 <= c["layer"] <= 2 for c in choices)
    assert (out / "probe" / "curve.json").is_file() and (out / "report.md").is_file()
    from vulnsteer.vectors.steering_vector import SteeringVector

    config = json.loads((out / "config.json").read_text())
    for f, c in enumerate(choices):
        sv = SteeringVector.load(out / "steer" / "vectors" / f"fold{f}-pooled", expect_d_model=64)
        prov = sv.provenance
        assert sv.layers == [c["layer"]] and prov.method == c["method"] and prov.model_id == config["model"]
        assert prov.record_ids and not set(prov.record_ids) & {r["id"] for r in test_rows if r["fold"] == f}
        assert any(i.startswith("augmented") for i in prov.record_ids), "--train augmented adds training records"


def test_baseline_over_every_template_writes_the_per_template_table(data_root, tiny_dirs, tmp_path):
    from vulnsteer.data.prompts import TEMPLATES

    out = tmp_path / "run"
    result = invoke("baseline", "--model", tiny_dirs["qwen2"], "--data", data_root, "--cwe", "CWE-787",
                    "--template", "all", "--no-generate", "--n-boot", "100", "--out", out,
                    "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 0, result.output
    table = json.loads((out / "baseline" / "templates.json").read_text())
    assert [t["id"] for t in table["templates"]] == list(TEMPLATES)
    rows = [json.loads(line) for line in (out / "baseline" / "samples.jsonl").read_text().splitlines()]
    assert {r["template"] for r in rows} == {"S1"}, "the standard baseline files stay on S1"
    md = (out / "report.md").read_text()
    assert "Baseline per prompt template" in md and "| S5-yn |" in md
    assert "Baseline per prompt template" in result.stdout


def test_run_with_steer_template_auto_states_the_template_chosen_per_fold(data_root, tiny_dirs, tmp_path):
    out = tmp_path / "run"
    result = invoke("run", "--model", tiny_dirs["qwen2"], "--data", data_root, "--cwe", "CWE-787,CWE-89,CWE-22",
                    "--steer-template", "auto", "--folds", "3", "--layers", "1", "--methods", "caa", "--no-generate",
                    "--n-boot", "100", "--out", out, "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 0, result.output
    chosen = json.loads((out / "steer" / "templates.json").read_text())["folds"]
    choices = json.loads((out / "steer" / "choices.json").read_text())
    assert [c["template"] for c in choices] == [c["template"] for c in chosen] and len(chosen) == 3
    for c in chosen:
        bacc = c["val_balanced_accuracy"]
        assert bacc[c["template"]] == max(bacc.values())
    from vulnsteer.vectors.steering_vector import SteeringVector

    for f, c in enumerate(choices):
        assert SteeringVector.load(out / "steer" / "vectors" / f"fold{f}-pooled").provenance.template_id == c["template"]
    test_rows = [json.loads(line) for line in (out / "steer" / "test.jsonl").read_text().splitlines()]
    assert sorted(r["index"] for r in test_rows) == list(range(18))
    assert "| fold | template | layer |" in (out / "report.md").read_text()


@pytest.mark.parametrize("scope, readout", [("answer", "answer"), ("code", "code-last")])
def test_run_with_files_read_in_windows_names_the_policy_in_every_section_it_shapes(data_root, tiny_dirs, tmp_path,
                                                                                      scope, readout):
    """Also with the code scope, whose side-by-side generations steer each window on its own code span."""
    out = tmp_path / "run"
    result = invoke(
        "run", "--model", tiny_dirs["qwen2"], "--data", data_root, "--cwe", "CWE-787,CWE-89,CWE-22",
        "--max-code-tokens", "200", "--max-new-tokens", "2", "--layers", "1", "--methods", "caa", "--n-boot", "100",
        "--folds", "3", "--scope", scope, "--readout", readout, "--out", out, "--cache-dir", tmp_path / "cache",
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "baseline" / "samples.jsonl").read_text().splitlines()]
    n_long = sum(r["n_windows"] > 1 for r in rows)
    assert n_long and not any(r["skipped"] for r in rows)
    line = f"Long files (--long-files windows, budget 200 code tokens): of 18 files, {n_long} read in more than one window"
    sections = {s.split("\n", 1)[0]: s for s in (out / "report.md").read_text().split("\n## ")[1:]}
    for title in (f"Headline: held-out results (readout {readout}, scope {scope})", "Verdict", "Baseline (no steering)",
                  f"Probe curve (readout {readout})", "Flip rates", "Generations side by side"):
        assert line in sections[title], title
    assert line not in sections["How to read this"]
    side = [json.loads(x) for x in (out / "steer" / "generations.jsonl").read_text().splitlines()]
    by_id = {r["id"]: r for r in rows}
    for r in side:  # a side-by-side answer holds one answer per window, as the baseline's does
        assert r["unsteered"].count("===== window ") == (by_id[r["id"]]["n_windows"] if by_id[r["id"]]["n_windows"] > 1 else 0)


def test_missing_data_root(tmp_path):
    line = one_line_error(invoke("data", "--data", tmp_path / "nowhere"))
    assert "nowhere" in line


@pytest.mark.parametrize("content", [b"", b"\xff\xfe int main() {}"])
def test_empty_or_non_utf8_code_file(data_root, tmp_path, content):
    copy = tmp_path / "data"
    shutil.copytree(data_root / "secllmholmes", copy / "secllmholmes")
    bad = copy / "secllmholmes" / "hand-crafted" / "dataset" / "CWE-787" / "2.c"
    bad.chmod(0o644)
    bad.write_bytes(content)
    line = one_line_error(invoke("data", "--data", copy, "--subset", "hand-crafted"))
    assert "2.c" in line


def test_unknown_cwe(data_root, tiny_dirs, tmp_path):
    line = one_line_error(invoke("baseline", "--model", tiny_dirs["qwen2"], "--data", data_root, "--cwe", "CWE-999",
                                 "--cache-dir", tmp_path))
    assert "CWE-999" in line


def test_unknown_model_name(data_root, tmp_path):
    line = one_line_error(invoke("baseline", "--model", "no-such-model", "--data", data_root, "--cache-dir", tmp_path))
    assert "no-such-model" in line


def test_unknown_template(data_root, tmp_path):
    line = one_line_error(invoke("baseline", "--template", "S99", "--data", data_root, "--cache-dir", tmp_path))
    assert "S99" in line


def test_sha256_mismatch_refuses_the_model(data_root, tmp_path, monkeypatch):
    part = tmp_path / "part1.bin"
    part.write_bytes(b"not the model you are looking for")
    module = tmp_path / "fake_part_mod.py"
    module.write_text(f"def get_part_path():\n    return {str(part)!r}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = sources.PartsSpec(
        name="fake-model", modules=("fake_part_mod",), sha256="0" * 64, size=None,
        pip_install="pip install fake", filename="fake.gguf",
    )
    monkeypatch.setitem(sources.BUILTIN_MODELS, "fake-model", spec)
    line = one_line_error(invoke("baseline", "--model", "fake-model", "--data", data_root, "--cache-dir", tmp_path / "c"))
    assert "sha256" in line.lower() and "0" * 16 in line


def test_bad_layers_value(data_root, tiny_dirs, tmp_path):
    line = one_line_error(invoke("steer", "--model", tiny_dirs["qwen2"], "--data", data_root, "--layers", "7",
                                 "--cache-dir", tmp_path))
    assert "block 7" in line


def test_report_needs_a_run_folder(tmp_path):
    one_line_error(invoke("report", tmp_path))


def test_bad_long_file_policy(data_root, tmp_path):
    line = one_line_error(invoke("baseline", "--long-files", "drop", "--data", data_root, "--cache-dir", tmp_path))
    assert "drop" in line


def test_steer_with_every_position_scope_on_tiny_model(data_root, tiny_dirs, tmp_path, device):
    out = tmp_path / "run"
    result = invoke(
        "steer", "--model", tiny_dirs["gpt_bigcode"], "--data", data_root, "--cwe", "CWE-787", "--cwe", "CWE-89",
        "--cwe", "CWE-22", "--layers", "1,2", "--methods", "caa", "--scope", "all", "--folds", "3", "--n-boot", "100",
        "--out", out, "--cache-dir", tmp_path / "cache", "--dtype", "bfloat16", "--device", device,
    )
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["steer"]["scope"] == "all"
    assert config["dtype"] == "bfloat16" and config["device"].startswith(device.type)
    # each precision keeps its own activation cache
    assert [p.name[16:] for p in (tmp_path / "cache" / "activations").iterdir()] == ["-bfloat16"]
    rows = [json.loads(line) for line in (out / "steer" / "test.jsonl").read_text().splitlines()]
    assert len(rows) == 18 and all(len(r["random"]) == 3 for r in rows)
    assert any(abs(r["steered"] - r["baseline"]) > 1e-4 for r in rows)


def test_steer_on_the_code_with_code_last_vectors_records_both(data_root, tiny_dirs, tmp_path):
    out = tmp_path / "run"
    result = invoke(
        "steer", "--model", tiny_dirs["qwen2"], "--data", data_root, "--cwe", "CWE-787,CWE-89,CWE-22", "--layers", "1",
        "--methods", "caa", "--scope", "code", "--readout", "code-last", "--folds", "3", "--n-random", "1",
        "--n-boot", "100", "--out", out, "--cache-dir", tmp_path / "cache",
    )
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["readout"] == "code-last" and config["steer"]["scope"] == "code"
    from vulnsteer.vectors.steering_vector import SteeringVector

    vector = SteeringVector.load(out / "steer" / "vectors" / "fold0-pooled")
    assert vector.provenance.position is Readout.CODE_LAST and vector.application.scope is Scope.SPAN
    report = (out / "report.md").read_text()
    assert "readout code-last, scope code" in report and "from the code-last readout, code scope steered" in report


def test_probe_on_code_mean_names_the_readout(data_root, tiny_dirs, tmp_path):
    out = tmp_path / "run"
    result = invoke("probe", "--model", tiny_dirs["gpt_bigcode"], "--data", data_root, "--cwe", "CWE-787,CWE-89",
                    "--readout", "code-mean", "--out", out, "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "probe" / "curve.json").read_text())["readout"] == "code-mean"
    assert "Probe curve (readout code-mean)" in (out / "report.md").read_text()


_PROBE_TORCH = """
import runpy, sys
sys.argv = ["vulnsteer", *sys.argv[1:]]
try:
    runpy.run_module("vulnsteer", run_name="__main__")
except SystemExit as exc:
    code = exc.code
print("torch imported:", "torch" in sys.modules)
sys.exit(code)
"""


@pytest.mark.parametrize("args, message", [
    (["run", "--scope", "middle"], "unknown sweepscope 'middle'"),
    (["run", "--readout", "middle"], "unknown readout 'middle'"),
    (["probe", "--readout", "code"], "unknown readout 'code'"),
    (["steer", "--readout", "last", "--scope", "code"], "unknown readout 'last'"),
    (["run", "--methods", "caa,magic"], "unknown method 'magic'"),
    (["run", "--methods", "caa,caa"], "--methods names caa twice"),
    (["steer", "--strength-unit", "furlongs"], "unknown strengthunit 'furlongs'"),
    (["run", "--search", "exhaustive"], "unknown searchmode 'exhaustive'; use one of grid, coarse-fine"),
    (["steer", "--search", "coarse-fine", "--search-top", "0"], "--search-top 0"),
    (["steer", "--search-subsample", "3"], "--search-subsample 3"),
    (["run", "--train", "everything"], "unknown train 'everything'"),
    (["run", "--layers", "30"], "block 30 out of range"),
    (["run", "--layers", "9-3"], "reversed"),
    (["run", "--layers", ""], "--layers is empty"),
    (["run", "--folds", "25"], "more than the 24 scenario groups"),
    (["run", "--max-new-tokens", "1000000000"], "does not fit the model's context"),
    (["baseline", "--template", "Z9"], "unknown prompt template 'Z9'"),
    (["run", "--steer-template", "Z9"], "unknown prompt template 'Z9'"),
    (["run", "--template", "all"], "only `vulnsteer baseline` scores every template"),
    (["baseline", "--long-files", "fold"], "unknown longfiles 'fold'"),
    (["run", "--long-files", "skip-pair"], "use one of windows, diff-centred, skip, skip-pairs"),
    (["run", "--generate-sample", "3"], "--generate-sample 3: must be an even number of at least 2"),
    # the old name of diff-centred is gone, not an alias: one way each
    (["run", "--long-files", "truncate"], "unknown longfiles 'truncate'; use one of windows, diff-centred, skip"),
    (["run", "--fit-on", "nonsense"], "--fit-on 'nonsense': not a dataset"),
    (["steer", "--test-on", "real-world"], "--test-on needs --fit-on"),
    (["run", "--fit-on", "augmented-trivial", "--test-on", "hand-crafted"], "share 6 scenario group(s)"),
    (["probe", "--fit-on", "hand-crafted"], "--fit-on hand-crafted and --test-on hand-crafted share 24"),
    (["run", "--fit-on", "hand-crafted", "--test-on", "real-world", "--folds", "25"], "more than the 24 scenario"),
    (["run", "--fit-on", "sven", "--steer-template", "auto"], "--steer-template auto cannot be combined with --fit-on"),
])
def test_every_option_is_checked_before_torch_loads(data_root, tmp_path, args, message):
    """The default (real) model is named but never loaded: shape checks read its known depth and context."""
    import subprocess
    import sys

    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", _PROBE_TORCH, *args, "--data", str(data_root), "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], proc.stderr
    assert "torch imported: False" in proc.stdout
    assert not out.exists(), "nothing is written before the options are checked"


def test_a_data_root_without_published_answers_runs_and_says_so(data_root, tiny_dirs, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "secllmholmes").symlink_to(data_root / "secllmholmes")  # no secllmholmes-published/, no sven/
    out = tmp_path / "run"
    result = invoke("run", "--model", tiny_dirs["qwen2"], "--data", root, "--cwe", "CWE-787,CWE-89", "--folds", "3",
                    "--layers", "1", "--methods", "caa", "--no-generate", "--n-boot", "100", "--out", out,
                    "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 0, result.output
    assert not (out / "published.json").exists()
    config = json.loads((out / "config.json").read_text())
    assert any("import-published" in n for n in config["notes"])
    assert "import-published" in (out / "report.md").read_text()
    assert (out / "steer" / "summary.json").is_file() and (out / "probe" / "curve.json").is_file()


def test_report_on_an_unfinished_run_says_so_and_exits_3(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"command": "run", "model": "m", "status": "interrupted"}))
    result = invoke("report", run)
    assert result.exit_code == 3, result.output
    assert (run / "report.md").read_text().splitlines()[0].startswith("# UNFINISHED RUN (status interrupted)")
    assert invoke("report", run, "--partial").exit_code == 0
    (run / "config.json").write_text(json.dumps({"command": "run", "model": "m", "status": "finished"}))
    assert invoke("report", run).exit_code == 0
    assert (run / "report.md").read_text().startswith("# vulnsteer report: m")


def test_a_fit_on_file_identical_to_a_test_file_is_refused_in_one_line(data_root, tmp_path):
    code = (data_root / "secllmholmes" / "hand-crafted" / "dataset" / "CWE-787" / "1.c").read_text()
    pairs = tmp_path / "copies.jsonl"
    pairs.write_text(json.dumps({"vulnerable": code, "secure": "int main(void) { return 0; }", "cwe": "CWE-787",
                                 "language": "c"}) + "\n")
    line = one_line_error(invoke("run", "--data", data_root, "--fit-on", pairs, "--test-on", "hand-crafted",
                                 "--out", tmp_path / "run"))
    assert "hold 1 byte-identical file(s)" in line and str(pairs) in line
    assert not (tmp_path / "run").exists()


def test_transfer_run_on_tiny_qwen_writes_a_complete_run_folder(small_root, tiny_dirs, tmp_path):
    out = tmp_path / "run"
    result = invoke(
        "run", "--model", tiny_dirs["qwen2"], "--data", small_root, "--fit-on", "sven", "--test-on", "hand-crafted",
        "--cwe", "CWE-787,CWE-89,CWE-22", "--no-generate", "--layers", "0-2", "--methods", "caa,probe", "--folds", "3",
        "--n-boot", "100", "--out", out, "--cache-dir", tmp_path / "cache",
    )
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["fit_on"] == ["sven"] and config["test_on"] == ["hand-crafted"] and config["status"] == "finished"
    # The fit-on passes are a stage of their own: a cell's wall time is the sum of its stages.
    assert {"baseline_forward", "fit_on_passes", "probes", "steering_sweep"} <= set(config["stage_seconds"])
    transfer = json.loads((out / "transfer.json").read_text())
    assert transfer["n_test"] == 18 and transfer["n_fit_train"] + transfer["n_fit_validation"] == 24
    baseline = [json.loads(line) for line in (out / "baseline" / "samples.jsonl").read_text().splitlines()]
    test_rows = [json.loads(line) for line in (out / "steer" / "test.jsonl").read_text().splitlines()]
    assert {r["id"] for r in test_rows} == {r["id"] for r in baseline} and len(test_rows) == 18
    assert all(r["subset"] == "hand-crafted" for r in baseline)
    sweep_ids = {line.split(",")[2] for line in (out / "steer" / "sweep.csv").read_text().splitlines()[1:]}
    assert sweep_ids and all(i.startswith("sven/") for i in sweep_ids), "configurations are chosen on fit-on data"
    assert len(json.loads((out / "steer" / "choices.json").read_text())) == 1
    from vulnsteer.vectors.steering_vector import SteeringVector

    vector = SteeringVector.load(out / "steer" / "vectors" / "fold0-pooled", expect_d_model=64)
    assert vector.provenance.record_ids and all(i.startswith("sven/") for i in vector.provenance.record_ids)
    summary = json.loads((out / "steer" / "summary.json").read_text())
    assert summary["conditions"]["baseline"]["all"]["n"][0] == 18 and "CWE-787" in summary["conditions"]["steered"]
    curve = json.loads((out / "probe" / "curve.json").read_text())
    assert len(curve["auroc"]) == len(curve["control_auroc_max"]) == config["architecture"]["n_layers"]
    report = (out / "report.md").read_text()
    assert "Transfer run: fit on sven, tested on hand-crafted." in report
    assert "Held-out results (fit on sven, tested on hand-crafted)" in report
    assert "validation split of the fit-on data" in report and (out / "report.html").is_file()
    assert (out / "steer" / "generations.jsonl").is_file()


def _probe_torch(args: list, env: dict | None = None):
    import os
    import subprocess
    import sys

    src = str(Path(__file__).resolve().parents[1] / "src")  # this checkout's code, whatever the cwd
    path = os.pathsep.join([src, *filter(None, [os.environ.get("PYTHONPATH")])])
    return subprocess.run([sys.executable, "-c", _PROBE_TORCH, *map(str, args)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": path, **(env or {})})


@pytest.mark.parametrize("device", ["cuda", "cuda:1", "mps"])
def test_a_device_this_torch_cannot_use_is_refused_before_torch_loads(data_root, tmp_path, device):
    """torch/version.py is read as text: a CPU build of torch refuses cuda, a machine without Apple silicon mps."""
    import platform

    import torch

    cpu_build = torch.version.cuda is None and getattr(torch.version, "hip", None) is None
    refused = cpu_build if device.startswith("cuda") else platform.machine() != "arm64"
    proc = _probe_torch(["probe", "--device", device, "--data", data_root, "--out", tmp_path / "run",
                         "--model", "no-such-model-anywhere"])
    assert proc.returncode == 2 and "torch imported: False" in proc.stdout, proc.stderr
    error = proc.stderr.strip().splitlines()[-1]
    if refused:
        assert error.startswith(f"error: --device {device} asked for but"), error
    else:  # the device passes this check; the model name is what is refused then
        assert "no-such-model-anywhere" in error, error


@pytest.mark.parametrize("env, why", [({"HF_HUB_OFFLINE": "1"}, "HF_HUB_OFFLINE is set"),
                                      ({"HF_ENDPOINT": "http://127.0.0.1:9"}, "127.0.0.1 not reachable")])
def test_an_unreachable_hub_id_is_refused_before_torch_loads(data_root, tmp_path, env, why):
    proc = _probe_torch(["probe", "--model", "nobody-vulnsteer/no-such-model", "--data", data_root,
                         "--out", tmp_path / "run"], {**env, "HF_HOME": str(tmp_path / "hf")})
    assert proc.returncode == 2 and "torch imported: False" in proc.stdout, proc.stderr
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith("error: could not reach the Hugging Face hub for 'nobody-vulnsteer/no-such-model'")
    assert why in error and "pass a local HF model directory or a .gguf file" in error


@pytest.mark.parametrize("command", ["baseline", "run", "probe", "steer", "study", "report"])
def test_flags_show_as_flags_in_help(command):
    """A boolean flag takes no value: its help shows no value placeholder (typer's rich help printed <bool>)."""
    result = runner.invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    flags = [line for line in result.stdout.splitlines() if line.strip().startswith(("--force", "--per-cwe", "--help",
                                                                                      "--trust-remote-code", "--partial"))]
    assert flags and all("<" not in line.split("  ")[1] for line in flags if "  " in line.strip()), flags
    assert "<bool>" not in result.stdout


def _before_torch(*args) -> str:
    """Run the command line in a subprocess; the one-line error it exits 2 with, checked before torch loaded."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _PROBE_TORCH, *map(str, args)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "torch imported: False" in proc.stdout
    return errors[0]


@pytest.mark.parametrize("where", ["dangling", "read-only", "cache-is-a-file"])
def test_an_unwritable_out_or_cache_dir_is_refused_before_the_model_loads(data_root, tmp_path, where):
    import sys

    args = ["run", "--model", "tiny-qwen2", "--no-generate", "--data", data_root, "--cwe", "CWE-787"]
    if where == "dangling":
        link = tmp_path / "link"
        link.symlink_to(tmp_path / "gone" / "away")
        assert "does not exist" in _before_torch(*args, "--out", link)
    elif where == "read-only":  # /sys refuses new entries even to root, whom permission bits do not stop
        if not sys.platform.startswith("linux"):
            pytest.skip("needs Linux's read-only /sys")
        assert "cannot write in /sys" in _before_torch(*args, "--out", "/sys/vulnsteer-run")
    else:
        (tmp_path / "cache").write_text("not a folder")
        assert "--cache-dir" in _before_torch(*args, "--out", tmp_path / "r", "--cache-dir", tmp_path / "cache")
        assert not (tmp_path / "r").exists()


def _pairs(path, n: int, label: int | None = None):
    """A pairs file of n vulnerable/secure pairs, or (label given) n unpaired records of that label only."""
    lines = []
    for i in range(n):
        if label is None:
            lines.append({"id": f"p{i}", "cwe": "CWE-89", "language": "python", "vulnerable": f"q = 'x' + u{i}",
                          "secure": f"q = ('x', u{i})"})
        else:
            lines.append({"id": f"s{i}", "cwe": "CWE-89", "language": "python", "code": f"q = 'x' + u{i}",
                          "label": label})
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def test_one_pair_says_cross_fitting_needs_three_groups_not_use_at_most_one(data_root, tmp_path):
    line = _before_torch("run", "--subset", _pairs(tmp_path / "one.jsonl", 1), "--data", data_root,
                         "--out", tmp_path / "r")
    assert "1 scenario group(s), but cross-fitting needs at least 3" in line and "at most 1" not in line


def test_one_label_data_is_refused_before_the_model_loads(data_root, tmp_path):
    line = _before_torch("probe", "--subset", _pairs(tmp_path / "vuln.jsonl", 6, label=1), "--data", data_root,
                         "--out", tmp_path / "r")
    assert "all 6 records are labelled vulnerable" in line


@pytest.mark.parametrize("policy, budget", [("skip", 64), ("windows", 16)])
def test_every_file_skipped_says_so_and_why(data_root, tmp_path, policy, budget):
    pairs = tmp_path / "long.jsonl"
    pairs.write_text("".join(json.dumps({"id": f"p{i}", "cwe": "CWE-89", "language": "python",
                                         "vulnerable": "x = [" + ", ".join(str(j) for j in range(200)) + f"] + u{i}",
                                         "secure": "y = [" + ", ".join(str(j) for j in range(200)) + f"] + v{i}"})
                             + "\n" for i in range(4)))
    result = invoke("run", "--no-generate", "--model", "tiny-qwen2", "--subset", pairs, "--data", data_root,
                    "--long-files", policy, "--max-code-tokens", budget, "--out", tmp_path / "r",
                    "--cache-dir", tmp_path / "cache")
    line = one_line_error(result)
    assert f"--long-files {policy} skipped every one of the 8 files" in line and f"--max-code-tokens {budget}" in line


def test_a_probe_on_three_groups_uses_three_folds_and_says_so(data_root, tmp_path):
    out = tmp_path / "r"
    result = invoke("probe", "--model", "tiny-qwen2", "--cwe", "CWE-22", "--data", data_root, "--out", out,
                    "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "probe" / "curve.json").read_text())["k_folds"] == 3
    assert "grouped 3-fold cross-validation, not 5-fold" in (out / "report.md").read_text()


@pytest.mark.parametrize("errno_, says", [(30, "Read-only file system"), (28, "No space left on device")])
def test_report_into_a_read_only_or_full_folder_is_one_line(tmp_path, monkeypatch, errno_, says):
    """The write fails as the OS would fail it (root ignores permission bits, so the fault is injected)."""
    import vulnsteer.report.document as document

    run = tmp_path / "r"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"command": "run", "model": "m", "status": "finished"}))

    def refused(path, text, fsync=False):
        raise OSError(errno_, says, str(path))

    monkeypatch.setattr(document, "atomic_write_text", refused)
    assert says in one_line_error(invoke("report", run))
