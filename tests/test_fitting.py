from __future__ import annotations

import re
from pathlib import Path

import pytest

from vulnsteer.data.fitting import (
    WINDOW_OVERLAP,
    changed_lines,
    count_tokens,
    fit_code,
    omission_marker,
    with_twin,
)
from vulnsteer.errors import VulnsteerError
from vulnsteer.options import LongFiles

OMITTED = re.compile(r"^(?:/\*|#) \.\.\. (\d+) lines? omitted \.\.\.(?: \*/)?$")


@pytest.fixture(scope="module")
def pair(data_root: Path) -> tuple[str, str]:
    """A real vulnerable file and its patch (libtiff CVE-2023-2908: 628 lines, change near line 130)."""
    cve = data_root / "secllmholmes" / "real-world" / "libtiff" / "CVE-2023-2908"
    read = lambda name: (cve / name).read_text(encoding="utf-8", errors="replace")  # noqa: E731
    return read("vuln.c"), read("patch.c")


def split_kept(result_code: str) -> tuple[int, list[str], int]:
    """(lines omitted above, kept lines, lines omitted below) parsed back from a truncated text."""
    lines = result_code.splitlines(keepends=True)
    above = below = 0
    if (m := OMITTED.match(lines[0].rstrip("\n"))):
        above, lines = int(m.group(1)), lines[1:]
    if (m := OMITTED.match(lines[-1].rstrip("\n"))):
        below, lines = int(m.group(1)), lines[:-1]
    return above, lines, below


def test_changed_lines_replacement_and_insertion():
    assert changed_lines("a\nb\nc\n", "a\nB\nc\n") == ([2], [2])
    # A pure insertion in the patch: the vulnerable side gets the lines around the insertion point.
    assert changed_lines("a\nc\nd\n", "a\nb\nc\nd\n") == ([1, 2], [2])
    assert changed_lines("same\n", "same\n") == ([], [])


def test_fits_unchanged(tokenizer):
    code = "int main(void) {\n    return 0;\n}\n"
    for policy in LongFiles:
        r = fit_code(code, tokenizer, 1000, policy, [2])
        (w,) = r.windows
        assert (w.code, r.truncated, r.skipped, r.note) == (code, False, False, "")
        assert r.original_tokens == w.n_tokens == count_tokens(code, tokenizer)
        assert w.line_range == (1, 3)


@pytest.mark.parametrize("budget", [150, 400, 1200])
def test_diff_centred_keeps_focus_whole_lines_and_budget(pair, tokenizer, budget):
    vuln, patch = pair
    focus, _ = changed_lines(vuln, patch)
    assert focus
    original = vuln.splitlines(keepends=True)
    r = fit_code(vuln, tokenizer, budget, LongFiles.DIFF_CENTRED, focus)
    assert r.truncated and not r.skipped and r.focus_kept
    (w,) = r.windows
    assert r.original_tokens == count_tokens(vuln, tokenizer) > budget
    assert w.n_tokens == count_tokens(w.code, tokenizer) <= budget
    lo, hi = w.line_range
    assert lo <= min(focus) and max(focus) <= hi
    above, kept, below = split_kept(w.code)
    assert kept == original[lo - 1 : hi]  # whole original lines, in order, nothing altered
    assert (above, below) == (lo - 1, len(original) - hi)
    assert above > 0 and below > 0  # the change sits mid-file, so both ends are cut and marked


def test_bigger_budget_keeps_more(pair, tokenizer):
    vuln, patch = pair
    focus, _ = changed_lines(vuln, patch)
    (small,), (big,) = (fit_code(vuln, tokenizer, b, LongFiles.DIFF_CENTRED, focus).windows for b in (300, 900))
    assert small.line_range[0] >= big.line_range[0] and small.line_range[1] <= big.line_range[1]
    assert big.n_tokens > small.n_tokens


def test_no_focus_keeps_head(pair, tokenizer):
    vuln, _ = pair
    (w,) = fit_code(vuln, tokenizer, 300, LongFiles.DIFF_CENTRED).windows
    above, kept, below = split_kept(w.code)
    assert above == 0 and w.line_range[0] == 1 and below > 0
    assert w.code.startswith(vuln.splitlines(keepends=True)[0])
    assert w.n_tokens <= 300


def test_python_marker(tokenizer):
    code = "".join(f"x{i} = {i}\n" for i in range(200))
    (w,) = fit_code(code, tokenizer, 80, LongFiles.DIFF_CENTRED, [100], language="python").windows
    assert w.code.splitlines()[0].startswith("# ... ") and "x99 = 99\n" in w.code
    assert omission_marker(1, "c") == "/* ... 1 line omitted ... */"


def test_skip_policy(pair, tokenizer):
    vuln, _ = pair
    r = fit_code(vuln, tokenizer, 300, LongFiles.SKIP, [10])
    assert r.skipped and not r.truncated and r.windows == ()
    assert "300" in r.note


def test_skip_pairs_refuses_one_file_like_skip_and_marks_a_twin_refused_for_its_pair(pair, tokenizer):
    vuln, patch = pair
    over, alone = fit_code(vuln, tokenizer, 300, LongFiles.SKIP_PAIRS), fit_code(vuln, tokenizer, 300, LongFiles.SKIP)
    assert over.skipped and over.windows == () and over.note == alone.note and not over.with_twin
    short = "int main(void) { return 0; }\n"
    fits = fit_code(short, tokenizer, 300, LongFiles.SKIP_PAIRS)
    assert not fits.skipped and fits.windows == fit_code(short, tokenizer, 300, LongFiles.SKIP).windows
    dropped = with_twin(fits, "x/vuln")
    assert dropped.skipped and dropped.with_twin and dropped.original_tokens == fits.original_tokens
    assert "x/vuln" in dropped.note


def test_spread_focus_reported(tokenizer):
    code = "".join(f"line_{i} = compute({i});\n" for i in range(300))
    r = fit_code(code, tokenizer, 120, LongFiles.DIFF_CENTRED, [20, 280])
    assert r.truncated and not r.focus_kept and "focus" in r.note
    (w,) = r.windows
    assert w.line_range[0] <= 20 <= w.line_range[1] and "line_19 " in w.code
    assert w.n_tokens <= 120


def test_single_line_over_budget_is_skipped_not_cut(tokenizer):
    code = "short\n" + "x" * 5000 + "\nshort\n"
    r = fit_code(code, tokenizer, 50, LongFiles.DIFF_CENTRED, [2])
    assert r.skipped and r.windows == () and "focus line" in r.note
    r = fit_code(code, tokenizer, 50, LongFiles.WINDOWS)
    assert r.skipped and r.windows == () and "single line" in r.note


def test_bad_arguments(tokenizer):
    with pytest.raises(VulnsteerError, match="unknown longfiles 'truncate'; use one of windows"):
        fit_code("a\n", tokenizer, 10, "truncate")  # type: ignore[arg-type]  # renamed diff-centred
    with pytest.raises(VulnsteerError, match="positive"):
        fit_code("a\n", tokenizer, 0, LongFiles.DIFF_CENTRED)
    with pytest.raises(VulnsteerError, match="outside"):
        fit_code("a\nb\n", tokenizer, 10, LongFiles.DIFF_CENTRED, [3])


@pytest.mark.parametrize("budget", [150, 400, 1200])
@pytest.mark.parametrize("language", ["c", "python"])
def test_windows_cover_every_line_in_whole_lines_within_budget(pair, tokenizer, budget, language):
    vuln, _ = pair
    original = vuln.splitlines(keepends=True)
    r = fit_code(vuln, tokenizer, budget, LongFiles.WINDOWS, language=language)
    assert not r.skipped and not r.truncated and len(r.windows) > 1 and f"{len(r.windows)} windows" in r.note
    covered: set[int] = set()
    for k, w in enumerate(r.windows):
        assert w.n_tokens == count_tokens(w.code, tokenizer) <= budget
        lo, hi = w.line_range
        above, kept, below = split_kept(w.code)
        assert kept == original[lo - 1 : hi]  # whole original lines, in order, nothing altered
        assert (above, below) == (lo - 1, len(original) - hi)  # every cut end marked with its line count
        covered |= set(range(lo, hi + 1))
        if k:  # consecutive: each window starts inside the one before, sharing at most WINDOW_OVERLAP lines
            prev_hi = r.windows[k - 1].line_range[1]
            assert r.windows[k - 1].line_range[0] < lo <= prev_hi + 1 and prev_hi - lo + 1 <= WINDOW_OVERLAP
    assert covered == set(range(1, len(original) + 1))
    assert r.windows[0].line_range[0] == 1 and r.windows[-1].line_range[1] == len(original)


def test_windows_need_no_focus_and_ignore_one(pair, tokenizer):
    vuln, patch = pair
    focus, _ = changed_lines(vuln, patch)
    assert fit_code(vuln, tokenizer, 300, LongFiles.WINDOWS, focus) == fit_code(vuln, tokenizer, 300, LongFiles.WINDOWS)
