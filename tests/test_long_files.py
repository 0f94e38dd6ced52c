"""The report's long-file line: the policy and the files it touched, from config.json and samples.jsonl."""

from __future__ import annotations

from vulnsteer.report.long_files import long_file_line

CFG = {"baseline": {"long_files": "windows", "max_code_tokens": 1536}}


def _row(n_windows: int = 1, truncated: bool = False, skipped: bool = False, label: int = 1) -> dict:
    return {"n_windows": n_windows, "truncated": truncated, "skipped": skipped, "label": label}


def test_counts_each_way_a_file_was_touched():
    rows = [_row(3), _row(2), _row(label=0), _row(0, skipped=True, label=0)]
    assert long_file_line(CFG, rows) == ("Long files (--long-files windows, budget 1536 code tokens): of 4 files, 2 read "
                                         "in more than one window (score: max over windows; residuals: mean); 1 skipped. "
                                         "In all, kept 3 (2 vulnerable, 1 secure) of 4 files and 0 of 0 pairs; dropped "
                                         "1 file (0 vulnerable, 1 secure), 0 pairs whole.")
    cfg = {"baseline": {"long_files": "diff-centred", "max_code_tokens": 512}}
    line = long_file_line(cfg, [_row(1, truncated=True), _row()])
    assert line is not None and "--long-files diff-centred, budget 512" in line and "1 cut to one window" in line


def test_untouched_runs_say_so_only_where_asked():
    rows = [_row(), _row()]
    assert long_file_line(CFG, rows) is None
    assert long_file_line(CFG, rows, always=True) == (
        "Long files (--long-files windows, budget 1536 code tokens): none of the 2 files exceeded the budget.")


def test_missing_or_foreign_files_give_no_line():
    assert long_file_line(None, [_row(2)]) is None
    assert long_file_line({"baseline": "x"}, [_row(2)]) is None
    assert long_file_line(CFG, None) is None
    # a run folder from before windows (no n_windows, the old option name) still reads
    old = {"baseline": {"long_files": "truncate", "max_code_tokens": 1536}}
    assert "--long-files truncate" in long_file_line(old, [{"truncated": True, "skipped": False}])


def test_skip_pairs_names_its_policy_and_counts_what_it_kept():
    cfg = {"baseline": {"long_files": "skip-pairs", "max_code_tokens": 768}}
    rows = [dict(_row(), id="a", pair_id="A"), dict(_row(label=0), id="a'", pair_id="A"),
            dict(_row(0, skipped=True), id="b", pair_id="B"),
            dict(_row(0, skipped=True, label=0), id="b'", pair_id="B", skipped_with_twin=True)]
    assert long_file_line(cfg, rows) == (
        "Long files (--long-files skip-pairs, budget 768 code tokens): of 4 files, 2 skipped. In all, kept 2 (1 vulnerable, "
        "1 secure) of 4 files and 1 of 2 pairs; dropped 2 files (1 vulnerable, 1 secure; 1 only because the twin was "
        "over the budget), 1 pair whole.")
