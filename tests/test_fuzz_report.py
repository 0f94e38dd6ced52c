"""The report reader fed wrong types and broken files: it writes a report or says what is wrong in one
line (DataError), never a traceback. Fixed budget, derandomized, so CI is deterministic."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from test_document import write_baseline, write_steer
from vulnsteer.errors import VulnsteerError
from vulnsteer.report.document import write_report

FILES = ["config.json", "baseline/summary.json", "published.json", "probe/curve.json", "steer/summary.json",
         "steer/choices.json", "steer/curves.json"]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


@pytest.fixture(scope="module")
def template_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("template")
    write_baseline(run)
    write_steer(run)
    return run


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*prefix, i))


def _set(obj, path, value):
    if not path:
        return value
    obj[path[0]] = _set(obj[path[0]], path[1:], value)
    return obj


def _check(run: Path) -> None:
    try:
        write_report(run)
    except VulnsteerError as exc:
        assert "\n" not in str(exc) and str(exc)


@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(file=st.sampled_from(FILES), pick=st.integers(0, 10**6), value=JSON_VALUES)
def test_wrong_types_anywhere_give_a_report_or_one_line(template_run, tmp_path_factory, file, pick, value):
    run = tmp_path_factory.mktemp("mut")
    shutil.rmtree(run)
    shutil.copytree(template_run, run)
    obj = json.loads((run / file).read_text())
    paths = list(_paths(obj))
    (run / file).write_text(json.dumps(_set(obj, paths[pick % len(paths)], value)))
    _check(run)


@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(file=st.sampled_from([*FILES, "steer/generations.jsonl"]), data=st.binary(max_size=64))
def test_garbage_files_give_one_line(template_run, tmp_path_factory, file, data):
    run = tmp_path_factory.mktemp("bytes")
    shutil.rmtree(run)
    shutil.copytree(template_run, run)
    (run / file).write_bytes(data)
    _check(run)


def test_report_md_that_is_a_directory(template_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(template_run, run)
    (run / "report.md").mkdir()
    with pytest.raises(VulnsteerError, match="is not a file"):
        write_report(run)
