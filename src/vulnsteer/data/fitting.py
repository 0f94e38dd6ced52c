"""The long-file policy: fit a code sample into a token budget by keeping whole lines, or skip it.

The policies are options.LongFiles.
"windows" (the default) cuts the whole file into consecutive windows of whole lines, each within the
budget, neighbours sharing `WINDOW_OVERLAP` lines; the model reads every window and the caller pools the
readings (prompting/windows.py). It needs nothing but the file.
"diff-centred" keeps one window of whole lines around the focus lines (the lines a patch changes, so it
needs the file's patched twin: knowledge of where the bug is that no user scanning unknown code has);
with no focus lines it keeps the head.
"skip" refuses the sample. "skip-pairs" refuses it the same way here, one file at a time; the caller
(prompting/samples.py) then also refuses the twin of every refused file (`with_twin`), so a pair is kept
or dropped whole.
Each window marks every cut with a comment saying how many lines were omitted. The `FitResult` says what
happened, and the caller records it per sample: nothing is dropped or shortened silently.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Sequence

from vulnsteer.errors import VulnsteerError
from vulnsteer.options import LongFiles

# Consecutive windows share this many lines, so a statement that uses what the line before a boundary set
# up is seen next to it in at least one window.
WINDOW_OVERLAP = 3


@dataclass(frozen=True)
class CodeWindow:
    """One stretch of whole lines of a file as the prompt shows it. Lines are 1-based and inclusive."""

    code: str  # the kept lines, each cut end replaced by an omission comment
    line_range: tuple[int, int]
    n_tokens: int  # tokens of `code`, omission comments included


@dataclass(frozen=True)
class FitResult:
    """What `fit_code` made of a file: the windows the model reads (one for a file that fits; none if skipped)."""

    policy: LongFiles
    windows: tuple[CodeWindow, ...]
    original_tokens: int
    truncated: bool = False  # diff-centred: lines were cut that no window shows
    focus_kept: bool = True  # diff-centred: every focus line lies inside the kept window
    note: str = ""
    with_twin: bool = False  # skip-pairs: refused only because its twin is over the budget

    @property
    def skipped(self) -> bool:
        return not self.windows


def count_tokens(text: str, tokenizer: Any) -> int:
    return len(tokenizer.encode(text, add_special_tokens=False))


def omission_marker(n_lines: int, language: str) -> str:
    """The comment line that replaces `n_lines` cut lines: "# ..." for Python, "/* ... */" otherwise."""
    what = f"... {n_lines} line{'s' if n_lines != 1 else ''} omitted ..."
    return f"# {what}" if language.lower() in ("python", "py") else f"/* {what} */"


def changed_lines(a: str, b: str) -> tuple[list[int], list[int]]:
    """1-based lines of `a` and of `b` that differ between the two (difflib line diff).

    For a pure insertion (or deletion) the side without changed lines gets the lines around the
    insertion point, so a vulnerable file still has a focus where its patched twin adds a check.
    """
    la, lb = a.splitlines(), b.splitlines()
    in_a: set[int] = set()
    in_b: set[int] = set()

    def around(i: int, n: int) -> set[int]:
        return {k + 1 for k in (i - 1, i) if 0 <= k < n}

    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, la, lb, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        in_a.update(range(i1 + 1, i2 + 1) if i2 > i1 else around(i1, len(la)))
        in_b.update(range(j1 + 1, j2 + 1) if j2 > j1 else around(j1, len(lb)))
    return sorted(in_a), sorted(in_b)


def _assemble(lines: list[str], lo: int, hi: int, language: str) -> str:
    body = "".join(lines[lo:hi])
    if lo > 0:
        body = omission_marker(lo, language) + "\n" + body
    if hi < len(lines):
        body = body + ("" if body.endswith("\n") else "\n") + omission_marker(len(lines) - hi, language)
    return body


def fit_code(
    code: str,
    tokenizer: Any,
    max_code_tokens: int,
    policy: LongFiles,
    focus_lines: Sequence[int] = (),
    language: str = "c",
) -> FitResult:
    """Fit `code` into `max_code_tokens` tokens under `policy` (see the module docstring).

    `focus_lines` (1-based) are read by "diff-centred" only."""
    policy = LongFiles(policy)  # one-line error naming the policies
    if max_code_tokens < 1:
        raise VulnsteerError(f"max_code_tokens must be positive, got {max_code_tokens}")
    lines = code.splitlines(keepends=True)
    bad = [f for f in focus_lines if not 1 <= f <= len(lines)]
    if bad:
        raise VulnsteerError(f"focus lines {bad} are outside the code's {len(lines)} lines")
    original = count_tokens(code, tokenizer)
    if original <= max_code_tokens:
        return FitResult(policy, (CodeWindow(code, (1, max(len(lines), 1)), original),), original)
    over = f"{original} tokens > budget {max_code_tokens}"
    if policy in (LongFiles.SKIP, LongFiles.SKIP_PAIRS):
        return FitResult(policy, (), original, focus_kept=not focus_lines, note=f"skipped: {over}")
    counts = [len(ids) for ids in tokenizer(lines, add_special_tokens=False)["input_ids"]]
    marker = count_tokens(omission_marker(len(lines), language) + "\n", tokenizer)
    fit = _Fitter(lines, counts, marker, max_code_tokens, language, tokenizer)
    if policy is LongFiles.WINDOWS:
        windows = fit.windows()
        if windows is None:
            return FitResult(policy, (), original, note=f"skipped: {over} and a single line does not fit a window")
        return FitResult(policy, windows, original,
                         note=f"windows: {over}; {len(windows)} windows of whole lines, {WINDOW_OVERLAP} lines shared")
    return fit.diff_centred(policy, original, over, sorted({f - 1 for f in focus_lines}))


def with_twin(fit: FitResult, twin_id: str) -> FitResult:
    """`fit` refused because its twin `twin_id` is over the budget ("skip-pairs"): the pair goes as a whole."""
    return FitResult(fit.policy, (), fit.original_tokens, note=f"skipped with its twin {twin_id}, which is over "
                     "the budget", with_twin=True)


@dataclass
class _Fitter:
    """Windows of whole lines within the budget, built from per-line token counts and checked exactly."""

    lines: list[str]
    counts: list[int]
    marker: int  # tokens of one omission comment (at most)
    budget: int
    language: str
    tokenizer: Any

    def estimate(self, lo: int, hi: int, body: int) -> int:
        return body + self.marker * ((lo > 0) + (hi < len(self.lines)))

    def exact(self, lo: int, hi: int) -> tuple[str, int]:
        text = _assemble(self.lines, lo, hi, self.language)
        return text, count_tokens(text, self.tokenizer)

    def windows(self) -> tuple[CodeWindow, ...] | None:
        """Consecutive windows covering every line; None if some line alone (with its comments) is over."""
        n, lo, out = len(self.lines), 0, []
        while True:
            hi, body = lo, 0
            while hi < n and self.estimate(lo, hi + 1, body + self.counts[hi]) <= self.budget:
                body += self.counts[hi]
                hi += 1
            hi = max(hi, lo + 1)  # the estimate can be pessimistic for one line: let the exact count decide
            text, kept = self.exact(lo, hi)
            while kept > self.budget and hi > lo + 1:
                # Per-line counts can underestimate the joined text; shrink from the end.
                hi -= 1
                text, kept = self.exact(lo, hi)
            if kept > self.budget:
                return None
            out.append(CodeWindow(text, (lo + 1, hi), kept))
            if hi == n:
                return tuple(out)
            lo = max(hi - WINDOW_OVERLAP, lo + 1)

    def diff_centred(self, policy: LongFiles, original: int, over: str, focus: list[int]) -> FitResult:
        """One window grown around the focus lines (0-based), the head of the file without them."""
        n, counts = len(self.lines), self.counts
        seed = (focus[0], focus[-1] + 1) if focus else (0, 1)
        if focus and self.estimate(*seed, sum(counts[seed[0]:seed[1]])) > self.budget:
            seed = (focus[0], focus[0] + 1)  # the focus span alone is too long: centre on its first line
        lo, hi = seed
        body = sum(counts[lo:hi])
        while True:
            up = (lo - 1, hi, body + counts[lo - 1]) if focus and lo > 0 else None  # no focus: keep the head
            down = (lo, hi + 1, body + counts[hi]) if hi < n else None
            # Grow the side with fewer kept lines first so the window stays centred on the focus.
            order = (up, down) if seed[0] - lo <= hi - seed[1] else (down, up)
            grown = next((w for w in order if w is not None and self.estimate(*w) <= self.budget), None)
            if grown is None:
                break
            lo, hi, body = grown
        text, kept = self.exact(lo, hi)
        while kept > self.budget and (lo, hi) != seed:
            # Per-line counts can underestimate the joined text; shrink from the longer side.
            if lo < seed[0] and (seed[0] - lo >= hi - seed[1] or hi == seed[1]):
                lo += 1
            else:
                hi -= 1
            text, kept = self.exact(lo, hi)
        if kept > self.budget:
            return FitResult(policy, (), original, focus_kept=not focus,
                             note=f"skipped: {over} and the focus line alone does not fit")
        focus_kept = all(lo <= f < hi for f in focus)
        note = f"diff-centred: {over}; kept lines {lo + 1}-{hi}"
        if not focus_kept:
            note += "; not every focus line fits"
        return FitResult(policy, (CodeWindow(text, (lo + 1, hi), kept),), original, truncated=True,
                         focus_kept=focus_kept, note=note)
