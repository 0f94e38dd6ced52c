"""The suite's skip rule (tests/skip_policy.py): a skipped test fails the run unless it is marked gpu."""

from __future__ import annotations

from pathlib import Path

import pytest

import skip_policy

pytest_plugins = ["pytester"]

SKIPS = """
import pytest

def test_runs():
    assert True

@pytest.mark.gpu
def test_needs_cuda():
    pytest.skip("no CUDA device")
"""


def _run(pytester, body: str):
    pytester.makeini("[pytest]\nmarkers =\n    gpu: needs a CUDA GPU\n")
    pytester.makeconftest(Path(skip_policy.__file__).read_text())  # the plugin, as the sample suite's conftest
    pytester.makepyfile(test_sample=body)
    return pytester.runpytest_subprocess()


def test_a_skipped_gpu_test_passes_the_run(pytester):
    result = _run(pytester, SKIPS)
    result.assert_outcomes(passed=1, skipped=1)
    assert result.ret == pytest.ExitCode.OK


def test_any_other_skip_fails_the_run_and_is_listed_with_its_reason(pytester):
    body = SKIPS + """
@pytest.fixture
def data():
    pytest.skip("data not found: run bash scripts/setup.sh --dev")

def test_needs_data(data):
    pass
"""
    result = _run(pytester, body)
    result.assert_outcomes(passed=1, skipped=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*only tests marked gpu may skip*",
                                 "test_sample.py::test_needs_data: Skipped: data not found: run bash scripts/setup.sh --dev"])
    assert "test_needs_cuda" not in result.stdout.str().split("only tests marked gpu may skip")[1]
