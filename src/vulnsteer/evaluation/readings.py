"""How a paired difference reads in words: what its interval rules out beside what its design detects.

Torch-free and numpy-free, so the report tables (which the command line imports before any option check) can
word intervals without loading the evaluation stage's numerics.
"""

from __future__ import annotations

POWER = 0.8  # the power at which a minimal detectable effect (MDE) is stated


def null_reading(low: float | None, high: float | None, mde: float | None, digits: int = 2) -> str:
    """What a paired difference's interval rules out and what its design could detect, in one clause:
    'the interval rules out changes below -0.03 or above 0.15; this design detects 0.09 with 80% power'. A
    zero-width interval (both conditions alike on every resample, e.g. identical answers) says that instead."""
    def ok(x: float | None) -> bool:
        return x is not None and x == x
    if not (ok(low) and ok(high)):
        return "no interval (undefined on these samples)"
    lo, hi = f"{low:.{digits}f}", f"{high:.{digits}f}"
    if lo == hi:
        return (f"the interval has zero width ({lo}): both conditions give the same result on every resample "
                "(identical answers), so no change was measured, nor could any be")
    design = f"; this design detects {mde:.{digits}f} with {POWER:.0%} power" if ok(mde) else ""
    if not low <= 0 <= high:  # type: ignore[operator]
        return f"the interval excludes 0{design}"
    return f"the interval rules out changes below {lo} or above {hi}{design}"
