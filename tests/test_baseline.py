"""The baseline on a tiny model under each long-file policy: rows, generated answers, notes and report labels."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from vulnsteer.cli import app
from vulnsteer.evaluation.parser import parse_answer
from vulnsteer.prompting.windows import pool_verdicts

HEADER = "===== window "


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def _baseline(policy: str, data_root, tiny_dirs, tmp_path, budget: int = 200,
              *extra: str) -> tuple[list[dict], dict, str]:
    out = tmp_path / policy
    result = CliRunner().invoke(app, [str(a) for a in (
        "baseline", "--model", tiny_dirs["qwen2"], "--data", data_root, "--cwe", "CWE-787", "--max-new-tokens", "3",
        "--max-code-tokens", budget, "--long-files", policy, "--n-boot", "100", "--out", out,
        "--cache-dir", tmp_path / "cache", *extra)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "baseline" / "samples.jsonl").read_text().splitlines()]
    return rows, json.loads((out / "config.json").read_text()), (out / "report.md").read_text()


def _windows_answers(text: str) -> list[str]:
    """A joined answer split back into its windows' answers (each under its header line)."""
    parts = [p for p in text.split(HEADER) if p]
    return [p.split("\n", 1)[1] if "\n" in p else "" for p in parts]


def test_windows_is_the_default_and_reads_every_window(data_root, tiny_dirs, tmp_path):
    rows, config, report = _baseline("windows", data_root, tiny_dirs, tmp_path)
    assert config["baseline"]["long_files"] == "windows"
    assert len(rows) == 6 and not any(r["skipped"] or r["truncated"] for r in rows)
    long = [r for r in rows if r["n_windows"] > 1]
    assert long, "a budget of 200 tiny tokens must split some CWE-787 file"
    for r in rows:
        answers = _windows_answers(r["generation"]) if r["n_windows"] > 1 else [r["generation"]]
        assert len(answers) == r["n_windows"]
        assert r["generation_verdict"] == pool_verdicts([parse_answer(a.rstrip("\n")) for a in answers])
    note = next(n for n in config["notes"] if n.startswith("--long-files windows"))
    assert f"{len(long)} of 6 files" in note and "maximum" in note
    line = f"Long files (--long-files windows, budget 200 code tokens): of 6 files, {len(long)} read in more than one window"
    baseline = report.split("## Baseline (no steering)")[1].split("\n## ")[0]
    assert line in baseline and note in report


def test_a_file_that_fits_gives_the_same_row_under_every_policy(data_root, tiny_dirs, tmp_path):
    by_policy = {p: _baseline(p, data_root, tiny_dirs, tmp_path, budget=1536)[0] for p in ("windows", "diff-centred", "skip")}
    first = by_policy["windows"]
    assert all(r["n_windows"] == 1 and not r["skipped"] for r in first)
    assert by_policy["diff-centred"] == first and by_policy["skip"] == first


def test_diff_centred_and_skip_are_labelled(data_root, tiny_dirs, tmp_path):
    rows, config, report = _baseline("diff-centred", data_root, tiny_dirs, tmp_path)
    cut = [r for r in rows if r["truncated"]]
    assert cut and all(r["n_windows"] == 1 for r in cut)
    note = next(n for n in config["notes"] if n.startswith("--long-files diff-centred"))
    assert f"{len(cut)} of 6 files" in note and "knowledge of where the change is" in note
    assert "Long files (--long-files diff-centred, budget 200 code tokens): of 6 files" in report and note in report
    rows, config, report = _baseline("skip", data_root, tiny_dirs, tmp_path)
    skipped = [r for r in rows if r["skipped"]]
    assert skipped and all(r["n_windows"] == 0 and r["generation"] is None for r in skipped)
    assert any(n.startswith(f"--long-files skip: {len(skipped)} of 6 files") for n in config["notes"])
    assert f"{len(skipped)} skipped" in report


def test_skip_pairs_drops_pairs_whole_and_counts_them_in_notes_and_report(data_root, tiny_dirs, tmp_path):
    """At 640 tiny tokens pair 2 is over on both sides and pair 3 on its patched side only (test_samples.py)."""
    rows, config, report = _baseline("skip-pairs", data_root, tiny_dirs, tmp_path, 640)
    kept = [r for r in rows if not r["skipped"]]
    assert [r["label"] for r in kept] == [1, 0] and kept[0]["pair_id"] == kept[1]["pair_id"]
    assert [r["id"].rsplit("/", 1)[1] for r in rows if r["skipped_with_twin"]] == ["3"]
    counts = ("kept 2 (1 vulnerable, 1 secure) of 6 files and 1 of 3 pairs; dropped 4 files (2 vulnerable, 2 secure; "
              "1 only because the twin was over the budget), 2 pairs whole")
    assert f"--long-files skip-pairs: {counts}" in config["notes"]
    assert any(n.startswith("--long-files skip-pairs: 3 of 6 files were longer than 640") for n in config["notes"])
    baseline = report.split("## Baseline (no steering)")[1].split("\n## ")[0]
    assert f"In all, {counts}." in baseline


def test_a_generation_sample_generates_for_its_files_only_and_scores_every_file(data_root, tiny_dirs, tmp_path):
    rows, config, report = _baseline("windows", data_root, tiny_dirs, tmp_path, 1536, "--generate-sample", "2")
    generated = [r for r in rows if r["generation"] is not None]
    assert len(generated) == 2 and {r["label"] for r in generated} == {0, 1}
    assert generated[0]["pair_id"] == generated[1]["pair_id"]  # a whole pair, so P-C stays computable
    assert all(r["generation_verdict"] is None for r in rows if r not in generated)
    summary = json.loads((tmp_path / "windows" / "baseline" / "summary.json").read_text())
    assert summary["score"]["all"]["n"][0] == 6 and summary["generation"]["all"]["n"][0] == 2
    line = ("generated answers: a seeded class-balanced sample of 2 of 6 files (1 vulnerable, 1 secure; "
            "--generate-sample 2); the answer score and published LLMs' columns cover every file")
    assert line in config["notes"] and "Generated answers: a seeded class-balanced sample of 2 of 6 files" in report


def test_diff_centred_on_unpaired_files_says_it_kept_their_head_not_a_window_around_a_change():
    from vulnsteer.experiments.baseline import long_file_notes
    from vulnsteer.experiments.baseline_config import BaselineConfig

    def row(i, label, pair_id):
        return dict(id=f"f{i}", label=label, pair_id=pair_id, n_windows=1, truncated=True, skipped=False)

    cfg = BaselineConfig(max_code_tokens=64, long_files="diff-centred")
    unpaired = long_file_notes([row(0, 1, None), row(1, 0, None), row(2, 1, "lonely")], cfg)
    assert not any("around the lines that differ" in n for n in unpaired)
    assert any("3 of 3 files" in n and "no vulnerable/patched twin" in n and "first lines" in n for n in unpaired)
    mixed = long_file_notes([row(0, 1, "p"), row(1, 0, "p"), row(2, 1, None)], cfg)
    assert any("2 of 3 files" in n and "around the lines that differ" in n for n in mixed)
    assert any("1 of 3 files" in n and "no vulnerable/patched twin" in n for n in mixed)
