"""predictions.csv rebuilt from SecLLMHolmes' results/ folder: equal to the shipped file, and bad folders refused."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from vulnsteer.data.published import load_published
from vulnsteer.data.published_import import import_published
from vulnsteer.errors import DataError

SHARED = Path(os.environ.get("VULNSTEER_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def test_rebuild_matches_the_shipped_csv_row_for_row(tmp_path):
    results, shipped = SHARED / "secllmholmes-results", SHARED / "secllmholmes-published" / "predictions.csv"
    if not (results / "prompts").is_dir() or not shipped.is_file():
        pytest.skip(f"SecLLMHolmes results or predictions.csv not under {SHARED}: copy SecLLMHolmes' results/ to "
                    f"{results}, then vulnsteer data import-published {results} --data {SHARED}")
    out = tmp_path / "predictions.csv"
    n = import_published(results, out)
    with shipped.open(newline="") as a, out.open(newline="") as b:
        want, got = list(csv.reader(a)), list(csv.reader(b))
    assert n == len(got) - 1 == len(want) - 1 == 9360
    differing = [(i, w, g) for i, (w, g) in enumerate(zip(want, got)) if w != g]
    assert differing == []
    assert out.read_bytes() == shipped.read_bytes()


def _results(tmp_path: Path) -> Path:
    """A tiny results/ tree in upstream's shapes, with upstream's wrong `label` on a patched file."""
    root = tmp_path / "results"
    for study in ("prompts", "real-world", "benchmark"):
        (root / study).mkdir(parents=True)
    answer = {"content": "...", "pred": "Yes", "label": 1}
    (root / "prompts" / "m.json").write_text(json.dumps(
        {"cwe-22": {"1.c": {"promptS1": answer}, "p_1.c": {"promptS1": {**answer, "pred": "n/a"}}}}
    ))  # fmt: skip
    (root / "real-world" / "m.json").write_text(json.dumps(
        {"proj": {"CVE-1": {"patch": {"ZT": {"pred": "no"}}, "vuln": {"ZT": {"pred": "eason: ..."}}}}}
    ))  # fmt: skip
    (root / "benchmark" / "m.json").write_text(json.dumps(
        {"augmented": {"x": 1}, "hand-crafted": {"cwe-79": {"p_2.py": {"pred": "NO"}}},
         "real-world": {"proj": {"CVE-1": {"vuln": {"pred": "yes"}}}}}
    ))  # fmt: skip
    return root


def test_tiny_tree_labels_from_file_names_and_preds_normalised(tmp_path):
    _results(tmp_path)
    out = tmp_path / "data" / "secllmholmes-published" / "predictions.csv"
    assert import_published(tmp_path, out) == 6  # the clone's root is accepted too
    rows = [tuple(r) for r in csv.reader(out.open(newline=""))]
    assert rows[1:] == [
        ("prompts", "m", "S1", "hand-crafted", "CWE-22", "1.c", "1", "yes"),
        ("prompts", "m", "S1", "hand-crafted", "CWE-22", "p_1.c", "0", "na"),  # label 1 upstream: wrong
        ("real-world", "m", "ZT", "real-world", "", "proj/CVE-1/patch", "0", "no"),
        ("real-world", "m", "ZT", "real-world", "", "proj/CVE-1/vuln", "1", "na"),
        ("benchmark", "m", "S1", "hand-crafted", "CWE-79", "p_2.py", "0", "no"),
        ("benchmark", "m", "S1", "real-world", "", "proj/CVE-1/vuln", "1", "yes"),
    ]
    assert len(load_published(tmp_path / "data")) == 6  # what the loader reads back


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda r: (r / "benchmark" / "m.json").unlink() or (r / "benchmark").rmdir(), "benchmark: folder missing"),
        (lambda r: (r / "prompts" / "m.json").write_text("{"), "m.json: not valid JSON"),
        (lambda r: (r / "prompts" / "m.json").write_text('{"cwe-22": {"1.c": {"promptS1": 3}}}'),
         "cwe-22/1.c/promptS1 has no 'pred'"),
        (lambda r: (r / "prompts" / "m.json").write_text('{"cwe-22": ["1.c"]}'), "cwe-22 is not a JSON object"),
        (lambda r: (r / "prompts" / "m.json").write_text('{"sql": {"1.c": {"promptS1": {"pred": "no"}}}}'),
         "key 'sql' is not a CWE id"),
        (lambda r: (r / "real-world" / "m.json").write_text('{"p": {"C": {"fixed": {"ZT": {"pred": "no"}}}}}'),
         "p/C/fixed: expected 'vuln' or 'patch'"),
        (lambda r: (r / "benchmark" / "m.json").write_text('{"hand-crafted": {}}'), "no 'real-world' part"),
        (lambda r: (r / "prompts" / "m.json").write_text("[" * 100_000 + "]" * 100_000), "nested too deeply"),
    ],
    ids=["no-study", "bad-json", "no-pred", "not-object", "bad-cwe", "bad-kind", "no-part", "deep"],
)
def test_damaged_results_are_one_line_errors_and_write_nothing(tmp_path, damage, message):
    root = _results(tmp_path)
    damage(root)
    out = tmp_path / "out" / "predictions.csv"
    with pytest.raises(DataError, match=message) as err:
        import_published(root, out)
    assert "\n" not in str(err.value)
    assert not out.parent.exists() or list(out.parent.iterdir()) == []  # no CSV, no temporary left behind


def test_an_unwritable_target_is_one_line_not_a_traceback(tmp_path):
    """A data root whose secllmholmes-published/ is a file (or read-only): a DataError naming the file."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "secllmholmes-published").write_text("not a folder")
    with pytest.raises(DataError, match="predictions.csv: cannot write"):
        import_published(_results(tmp_path), root / "secllmholmes-published" / "predictions.csv")
