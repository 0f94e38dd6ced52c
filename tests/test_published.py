"""Published LLM answers: the README's numbers, joins to our records, and bad CSVs."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from vulnsteer.data.published import (
    PublishedPrediction,
    load_published,
    published_missing,
    published_table,
)
from vulnsteer.data.secllmholmes import load_secllmholmes
from vulnsteer.errors import DataError

HEADER = "study,model,prompt,subset,cwe,item,label,pred\n"


@pytest.fixture(scope="module")
def preds(data_root):
    if not (data_root / "secllmholmes-published" / "predictions.csv").is_file():
        pytest.skip(f"no published predictions under {data_root}: vulnsteer data import-published "
                    f"<SecLLMHolmes clone>/results --data {data_root}")
    return load_published(data_root)


@pytest.mark.parametrize(
    ("study", "model", "accuracy"),
    [
        ("benchmark", "o4-mini", 0.812),
        ("benchmark", "gpt-4.1", 0.771),
        ("benchmark", "gpt-4", 0.583),
        ("prompts", "codellama7b", 0.479),
        ("prompts", "starchat-beta", 0.500),
    ],
)
def test_readme_accuracies(preds, study, model, accuracy):
    row = published_table(preds, study, "S1", "hand-crafted")[model]["all"]
    assert round(row["accuracy"], 3) == accuracy
    assert row["n"] == 48


def test_per_cwe_cells_add_up(preds):
    table = published_table(preds, "benchmark", "S1", "hand-crafted")["o4-mini"]
    assert len(table) == 1 + 8
    assert sum(cell["n"] for key, cell in table.items() if key != "all") == 48
    assert sum(cell["accuracy"] * cell["n"] for key, cell in table.items() if key != "all") == pytest.approx(39)


def test_real_world_rows_get_their_cwe(preds):
    rw = [p for p in preds if p.subset == "real-world"]
    assert rw and all(p.cwe for p in rw)
    assert {p.cwe for p in rw if p.item.startswith("gpac/CVE-2023-1452/")} == {"CWE-787"}
    assert set(published_table(preds, "real-world", "ZT", "real-world")["gpt-4"]) == {
        "all", "CWE-190", "CWE-416", "CWE-476", "CWE-787"
    }  # fmt: skip


def published_item_key(record) -> tuple[str, str, str]:
    """(subset, cwe, item) as predictions.csv names the file of `record`."""
    if record.subset == "hand-crafted":
        return record.subset, record.cwe, Path(record.source_path).name
    return record.subset, record.cwe, record.id.removeprefix("real-world/")


def prediction_key(pred: PublishedPrediction) -> tuple[str, str, str]:
    return pred.subset, pred.cwe, pred.item


def test_every_row_joins_a_record_with_the_same_label(preds, data_root):
    records = load_secllmholmes(data_root, ["hand-crafted", "real-world"])
    labels = {published_item_key(r): r.label for r in records}
    assert len(labels) == 78
    assert all(labels[prediction_key(p)] == p.label for p in preds)
    assert {prediction_key(p) for p in preds} == set(labels)


def _p(label: int, pred: str, cwe: str = "CWE-22") -> PublishedPrediction:
    return PublishedPrediction("s", "m", "S1", "hand-crafted", cwe, f"{label}{pred}.c", label, pred)


def test_metrics_count_na_as_wrong():
    preds = [_p(1, "yes"), _p(1, "na"), _p(0, "no"), _p(0, "yes"), _p(0, "na", "CWE-79")]
    cell = published_table(preds, "s", "S1", "hand-crafted")["m"]
    assert cell["all"] == {"accuracy": 0.4, "tpr": 0.5, "tnr": 1 / 3, "na_rate": 0.4, "n": 5.0}
    assert math.isnan(cell["CWE-79"]["tpr"]) and cell["CWE-79"]["tnr"] == 0.0


def test_unknown_selection_lists_what_exists():
    with pytest.raises(DataError, match="available: s/S1/hand-crafted"):
        published_table([_p(1, "yes")], "benchmark", "S1", "hand-crafted")


def _csv(tmp_path, body: str):
    folder = tmp_path / "secllmholmes-published"
    folder.mkdir()
    (folder / "predictions.csv").write_text(body)
    return folder / "predictions.csv"


def test_fake_csv_loads(tmp_path):
    _csv(tmp_path, HEADER + "benchmark,m,S1,hand-crafted,cwe-022,1.c,1,YES\n")
    assert load_published(tmp_path) == [PublishedPrediction("benchmark", "m", "S1", "hand-crafted", "CWE-22", "1.c", 1, "yes")]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (HEADER + "b,m,S1,hand-crafted,CWE-22,1.c,1,maybe\n", ":2: pred 'maybe' is not one of yes, no, na"),
        (HEADER + "b,m,S1,hand-crafted,CWE-22,1.c,x,yes\n", ":2: label 'x' is not 0 or 1"),
        ("study,model,prompt\n", "missing column 'subset'"),
        ("", "missing column 'study'"),
    ],
)
def test_bad_csv(tmp_path, body, message):
    path = _csv(tmp_path, body)
    with pytest.raises(DataError, match=message) as err:
        load_published(tmp_path)
    assert str(path) in str(err.value)


def test_missing_csv_is_an_empty_result_with_a_note(tmp_path):
    assert load_published(tmp_path) == []
    note = published_missing(tmp_path)
    assert note is not None and note.startswith("published answers not available") and "predictions.csv" in note
    _csv(tmp_path, HEADER)
    assert published_missing(tmp_path) is None and load_published(tmp_path) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (HEADER + "b,m,S1,hand-crafted,CWE-22,1.c,1\n", ":2: expected 8 cells"),  # a truncated last row
        (HEADER + "b,m,S1,hand-crafted,CWE-22,1.c,1,yes,extra\n", ":2: expected 8 cells"),
        (HEADER + "b,m,S1,hand-crafted,buffer,1.c,1,yes\n", ":2: cwe 'buffer' is not a CWE id"),
    ],
    ids=["short-row", "long-row", "bad-cwe"],
)
def test_damaged_csv_is_a_one_line_data_error(tmp_path, body, message):
    path = _csv(tmp_path, body)
    with pytest.raises(DataError, match=re.escape(f"{path}{message}")) as err:
        load_published(tmp_path)
    assert "\n" not in str(err.value)
