"""Generic pairs JSONL: both line kinds, the documented example, and every malformed line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from vulnsteer.data.pairs import check_unique_ids, iter_jsonl, load_pairs_jsonl
from vulnsteer.data.records import SECURE, VULNERABLE
from vulnsteer.errors import DataError

DOC = Path(__file__).resolve().parents[1] / "docs" / "DATA_FORMAT.md"
PAIR = {"id": "p1", "cwe": "CWE-787", "language": "C", "vulnerable": "v()", "secure": "s()"}


def write(tmp_path: Path, *lines: object) -> Path:
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return path


def test_documented_example_loads(tmp_path):
    block = re.search(r"```jsonl\n(.*?)```", DOC.read_text(), re.S)
    assert block is not None
    path = tmp_path / "example.jsonl"
    path.write_text(block.group(1))
    recs = load_pairs_jsonl(path, subset="mine")
    assert [r.id for r in recs] == ["mine/cve-2021-0001/vulnerable", "mine/cve-2021-0001/secure", "mine/q1", "mine/q2"]
    assert recs[0].group == recs[1].group == "mine/libfoo"
    assert recs[0].ground_truth == "strcpy into an 8-byte buffer"
    assert [r.label for r in recs] == [VULNERABLE, SECURE, VULNERABLE, SECURE]
    assert {r.cwe for r in recs[2:]} == {"CWE-89"}
    assert recs[2].pair_id is None and recs[3].pair_id == "mine/q"


def test_pair_line(tmp_path):
    path = write(tmp_path, {**PAIR, "ground_truth": {"vulnerable": "bad", "secure": "good"}, "flags": ["x"]})
    vuln, safe = load_pairs_jsonl(path)
    assert (vuln.id, safe.id) == ("pairs/p1/vulnerable", "pairs/p1/secure")
    assert vuln.pair_id == safe.pair_id == vuln.group == "pairs/p1"
    assert (vuln.code, safe.code, vuln.language) == ("v()", "s()", "c")
    assert (vuln.ground_truth, safe.ground_truth, vuln.flags) == ("bad", "good", ("x",))
    assert vuln.source_path == f"{path}:1"


def test_default_ids_and_primevul_style_cwe(tmp_path):
    line = {k: v for k, v in PAIR.items() if k != "id"} | {"cwe": ["CWE-416"]}
    path = write(tmp_path, "", line)
    recs = load_pairs_jsonl(path)
    assert recs[0].id == "pairs/mine:2/vulnerable" and recs[0].cwe == "CWE-416"


def test_iter_jsonl_skips_blank_lines(tmp_path):
    path = write(tmp_path, {"a": 1}, "   ", {"b": 2})
    assert [n for n, _ in iter_jsonl(path)] == [1, 3]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{oops", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ({"id": "a", "cwe": "CWE-1", "language": "c"}, "missing field 'vulnerable'"),
        ({k: v for k, v in PAIR.items() if k != "secure"}, "missing field 'secure'"),
        ({k: v for k, v in PAIR.items() if k != "language"}, "missing field 'language'"),
        ({k: v for k, v in PAIR.items() if k != "cwe"}, "missing field 'cwe'"),
        ({**PAIR, "secure": "  "}, "field 'secure' must be a non-empty string"),
        ({**PAIR, "cwe": "buffer overflow"}, "field 'cwe' is not one CWE id"),
        ({**PAIR, "cwe": ["CWE-1", "CWE-2"]}, "field 'cwe' is not one CWE id"),
        ({**PAIR, "code": "x"}, "not both"),
        ({**PAIR, "flags": "x"}, "'flags' must be a list of strings"),
        ({"id": "u", "cwe": "79", "language": "python", "code": "x"}, "missing field 'label'"),
        ({"id": "u", "cwe": "79", "language": "python", "code": "x", "label": 2}, "field 'label' is 2"),
        ({"id": "u", "cwe": "79", "language": "python", "code": "x", "label": True}, "field 'label' is True"),
        ({"id": "u", "cwe": "79", "language": "python", "label": 1}, "missing field 'code'"),
        ({**PAIR, "id": "p0"}, None),  # a valid line: the error below comes from line 3
    ],
)
def test_malformed_line(tmp_path, line, message):
    path = write(tmp_path, PAIR, line, {**PAIR})
    expected = message or "id 'pairs/p1/vulnerable' already used"
    with pytest.raises(DataError, match=re.escape(expected)) as err:
        load_pairs_jsonl(path)
    assert f"{path}:{2 if message else 3}:" in str(err.value)


def test_unpaired_labels(tmp_path):
    base = {"cwe": "79", "language": "python", "code": "x"}
    path = write(tmp_path, {**base, "id": "a", "label": "Vulnerable"}, {**base, "id": "b", "label": 0})
    assert [r.label for r in load_pairs_jsonl(path)] == [VULNERABLE, SECURE]


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n")
    with pytest.raises(DataError, match="empty.jsonl: no records"):
        load_pairs_jsonl(path)


def test_non_utf8_file(tmp_path):
    path = tmp_path / "latin.jsonl"
    path.write_bytes(json.dumps({**PAIR, "vulnerable": "caf\u00e9"}).encode("utf-8").replace(b"\\u00e9", b"\xe9"))
    with pytest.raises(DataError, match="latin.jsonl: not UTF-8"):
        load_pairs_jsonl(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        load_pairs_jsonl(tmp_path / "nope.jsonl")


# --- faults: inputs that used to escape as tracebacks or pass silently ---------------------------

HOSTILE = {
    "deep-nesting": ('{"id": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
    "5000-digits": ('{"id": ' + "9" * 5000 + "}", "a number longer than"),
    "id-object": ({**PAIR, "id": {"a": 1}}, "field 'id' must be a string or an integer, got dict"),
    "id-list": ({**PAIR, "id": ["a"]}, "field 'id' must be a string or an integer, got list"),
    "id-bool": ({**PAIR, "id": True}, "field 'id' must be a string or an integer, got bool"),
    "id-blank": ({**PAIR, "id": " "}, "field 'id' is empty"),
    "group-object": ({**PAIR, "group": {"commit": "abc"}}, "field 'group' must be a string or an integer"),
    "surrogate": ({**PAIR, "vulnerable": "x\ud800"}, "field 'vulnerable' holds an unpaired surrogate escape (\\ud800)"),
    "truth-number": ({**PAIR, "ground_truth": {"vulnerable": 1}}, "field 'ground_truth' must be a string or an object"),
    "huge-cwe": ({**PAIR, "cwe": "x" * 5000}, "is not one CWE id ('xxxx"),
}


@pytest.mark.parametrize(("line", "message"), HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_line_is_one_line_data_error(tmp_path, line, message):
    path = write(tmp_path, PAIR, line)
    with pytest.raises(DataError, match=re.escape(message)) as err:
        load_pairs_jsonl(path)
    text = str(err.value)
    assert text.startswith(f"{path}:2: ") and "\n" not in text and len(text) < 300


def test_unpaired_pair_id_must_be_scalar(tmp_path):
    line = {"id": "u", "cwe": "79", "language": "python", "code": "x", "label": 1, "pair_id": ["a", "b"]}
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'mine.jsonl'}:1: field 'pair_id'")):
        load_pairs_jsonl(write(tmp_path, line))


def test_integer_ids_still_allowed(tmp_path):
    recs = load_pairs_jsonl(write(tmp_path, {**PAIR, "id": 7, "group": 3}))
    assert recs[0].id == "pairs/7/vulnerable" and recs[0].group == "pairs/3"


def test_line_separator_inside_a_string_does_not_split_the_line(tmp_path):
    # U+2028 is legal raw inside a JSON string; str.splitlines() would cut the line there.
    path = tmp_path / "mine.jsonl"
    first = json.dumps({**PAIR, "vulnerable": "a\u2028b"}, ensure_ascii=False)
    path.write_text(first + "\n" + json.dumps({**PAIR, "id": "p2"}))
    recs = load_pairs_jsonl(path)
    assert recs[0].code == "a\u2028b" and recs[2].source_path == f"{path}:2"


def test_duplicate_ids_across_files(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = write(tmp_path / "a", PAIR)
    second = write(tmp_path / "b", {**PAIR, "vulnerable": "other()"})
    records = load_pairs_jsonl(first) + load_pairs_jsonl(second)
    with pytest.raises(DataError, match=re.escape(f"{second}:1: id 'pairs/p1/vulnerable' already used at {first}:1")):
        check_unique_ids(records)
    check_unique_ids(load_pairs_jsonl(first) + load_pairs_jsonl(second, subset="other"))  # distinct subsets: fine
