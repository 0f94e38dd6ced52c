"""The skip rule of this suite, as a pytest plugin (tests/conftest.py loads it): only a test marked `gpu` may
skip. Any other skip (data not found, an extra not installed) fails the session, listed at the end with its
reason, so a green run means every test ran; a skip reason names the command that installs what is missing."""

from __future__ import annotations

import pytest

_skipped: list[str] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") and item.get_closest_marker("gpu") is None:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _skipped.append(f"{item.nodeid}: {reason}")


def pytest_sessionfinish(session, exitstatus):
    if _skipped and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    if _skipped:
        terminalreporter.section("skipped tests that need no GPU (only tests marked gpu may skip)", red=True)
        for line in _skipped:
            terminalreporter.line(line)
