"""The long-file policy: fit a code sample into a token budget by keeping whole lines, or skip it.

"truncate" keeps one window of whole lines around the focus lines (the lines a patch changes) and marks
each cut with a comment saying how many lines were omitted; with no focus lines it keeps the head.
"skip" refuses the sample. Either way the `FitResult` says what happened, and the caller records it
per sample: nothing is dropped or shortened silently.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Literal, Sequence

from vulnsteer.errors import VulnsteerError

Policy = Literal["truncate", "skip"]
POLICIES: tuple[str, ...] = ("truncate", "skip")


@dataclass(frozen=True)
class FitResult:
    """What `fit_code` kept. Line numbers are 1-based and inclusive, in the original file."""

    code: str  # the code to put in the prompt; "" when skipped
    truncated: bool
    skipped: bool
    original_tokens: int
    kept_tokens: int  # tokens of `code`, omission comments included
    kept_line_range: tuple[int, int] | None  # None when skipped
    focus_kept: bool = True  # every focus line lies inside kept_line_range
    note: str = ""


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
    policy: Policy,
    focus_lines: Sequence[int] = (),
    language: str = "c",
) -> FitResult:
    """Fit `code` into `max_code_tokens` tokens under `policy` (see the module docstring)."""
    if policy not in POLICIES:
        raise VulnsteerError(f"unknown long-file policy {policy!r}; choose one of: {', '.join(POLICIES)}")
    if max_code_tokens < 1:
        raise VulnsteerError(f"max_code_tokens must be positive, got {max_code_tokens}")
    lines = code.splitlines(keepends=True)
    bad = [f for f in focus_lines if not 1 <= f <= len(lines)]
    if bad:
        raise VulnsteerError(f"focus lines {bad} are outside the code's {len(lines)} lines")
    original = count_tokens(code, tokenizer)
    if original <= max_code_tokens:
        return FitResult(code, False, False, original, original, (1, max(len(lines), 1)))

    def refuse(note: str) -> FitResult:
        return FitResult("", False, True, original, 0, None, focus_kept=not focus_lines, note=note)

    over = f"{original} tokens > budget {max_code_tokens}"
    if policy == "skip":
        return refuse(f"skipped: {over}")

    focus = sorted({f - 1 for f in focus_lines})
    counts = [len(ids) for ids in tokenizer(lines, add_special_tokens=False)["input_ids"]]
    marker = count_tokens(omission_marker(len(lines), language) + "\n", tokenizer)
    n = len(lines)

    def estimate(lo: int, hi: int, body: int) -> int:
        return body + marker * ((lo > 0) + (hi < n))

    seed = (focus[0], focus[-1] + 1) if focus else (0, 1)
    if focus and estimate(*seed, sum(counts[seed[0]:seed[1]])) > max_code_tokens:
        seed = (focus[0], focus[0] + 1)  # the focus span alone is too long: centre on its first line
    lo, hi = seed
    body = sum(counts[lo:hi])
    while True:
        up = (lo - 1, hi, body + counts[lo - 1]) if focus and lo > 0 else None  # no focus: keep the head
        down = (lo, hi + 1, body + counts[hi]) if hi < n else None
        # Grow the side with fewer kept lines first so the window stays centred on the focus.
        order = (up, down) if seed[0] - lo <= hi - seed[1] else (down, up)
        grown = next((w for w in order if w is not None and estimate(*w) <= max_code_tokens), None)
        if grown is None:
            break
        lo, hi, body = grown
    text = _assemble(lines, lo, hi, language)
    kept = count_tokens(text, tokenizer)
    while kept > max_code_tokens and (lo, hi) != seed:
        # Per-line counts can underestimate the joined text; shrink from the longer side.
        if lo < seed[0] and (seed[0] - lo >= hi - seed[1] or hi == seed[1]):
            lo += 1
        else:
            hi -= 1
        text = _assemble(lines, lo, hi, language)
        kept = count_tokens(text, tokenizer)
    if kept > max_code_tokens:
        return refuse(f"skipped: {over} and the focus line alone does not fit")
    focus_kept = all(lo <= f < hi for f in focus)
    note = f"truncated: {over}; kept lines {lo + 1}-{hi}"
    if not focus_kept:
        note += "; not every focus line fits"
    return FitResult(text, True, False, original, kept, (lo + 1, hi), focus_kept=focus_kept, note=note)
