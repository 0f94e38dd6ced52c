"""Find the data root: the folder that holds `secllmholmes/` (and optionally `sven/`, `secllmholmes-published/`)."""

from __future__ import annotations

import os
from pathlib import Path

from vulnsteer.errors import DataError

ENV_VAR = "VULNSTEER_DATA"
MARKER = "secllmholmes"
HOW_TO_GET = (
    "get it with `git clone https://github.com/ai4cloudops/SecLLMHolmes` and "
    "`mkdir -p DATA && ln -s \"$PWD/SecLLMHolmes/datasets\" DATA/secllmholmes`, "
    f"then pass --data DATA (or set {ENV_VAR}=DATA)"
)


def _checkout_dir(start: Path) -> Path | None:
    """The nearest directory above `start` that holds pyproject.toml (the project checkout)."""
    for parent in start.resolve().parents:
        if (parent / "pyproject.toml").is_file():
            return parent
    return None


def _has_marker(path: Path) -> bool:
    return (path / MARKER).is_dir()


def _not_found(path: Path, origin: str) -> DataError:
    hint = ""
    marker = path / MARKER
    if marker.is_symlink() and not marker.exists():
        # The usual set-up is a link to a clone's datasets/: a moved clone leaves it dangling.
        hint = f" ({marker} is a link to {os.readlink(marker)}, which does not exist; fix or remake the link)"
    elif (path / "datasets" / "hand-crafted").is_dir():
        # The user pointed at a SecLLMHolmes clone itself: tell them the exact link to make.
        hint = f" (it looks like a SecLLMHolmes clone: `ln -s \"{path / 'datasets'}\" DATA/secllmholmes` and pass DATA)"
    return DataError(f"{origin}{path} has no {MARKER}/ folder{hint}; {HOW_TO_GET}")


def default_candidates() -> list[Path]:
    """Where the data is looked for when neither --data nor $VULNSTEER_DATA is given, in order."""
    found: list[Path] = []
    checkout = _checkout_dir(Path(__file__))
    if checkout is not None:
        found.append(checkout.parent / "shared" / "data")
    cwd_candidate = Path.cwd().resolve().parent / "shared" / "data"
    if cwd_candidate not in found:
        found.append(cwd_candidate)
    return found


def resolve_data_root(explicit: Path | None) -> Path:
    """The --data value, else $VULNSTEER_DATA, else ../shared/data beside the checkout or the cwd.

    An explicit value (flag or env var) that lacks `secllmholmes/` is an error rather than
    a silent fall-through, so a typo never quietly loads some other copy of the data.
    """
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not _has_marker(path):
            raise _not_found(path, "--data ")
        return path.resolve()
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        path = Path(env).expanduser()
        if not _has_marker(path):
            raise _not_found(path, f"${ENV_VAR}=")
        return path.resolve()
    candidates = default_candidates()
    for path in candidates:
        if _has_marker(path):
            return path.resolve()
    looked = ", ".join(str(p) for p in candidates)
    raise DataError(f"no {MARKER}/ folder found (looked in {looked}); {HOW_TO_GET}")
