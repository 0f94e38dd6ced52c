"""Which folders vulnsteer may write, checked before anything slow (torch-free).

A folder vulnsteer wrote carries a marker file (schema.MARKER) naming vulnsteer, the folder's kind (run,
comparison) and the schema version, written when the folder is created. Only a marked folder is ever
cleared or written over; a folder without it (a user's folder, even one holding a `config.json`) is never a
run folder. Paths are resolved (symlinks, `..`) before any check, so `--out new/../../old` is checked as
`old`.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from vulnsteer.errors import VulnsteerError
from vulnsteer.experiments.run_folder import schema
from vulnsteer.io import atomic_write_text
from vulnsteer.version import __version__

RUN, COMPARISON = "run", "comparison"


def resolved(path: Path | str, option: str = "--out") -> Path:
    """`path` made absolute with symlinks and `..` resolved; a dangling symlink is refused in one line."""
    path = Path(path).expanduser()
    if path.is_symlink() and not path.exists():
        raise VulnsteerError(f"{option} {path} is a symlink to {os.readlink(path)}, which does not exist; "
                             f"point {option} at a real folder")
    return path.resolve()


def marker(path: Path) -> dict[str, Any] | None:
    """The folder's marker (what wrote it: {"vulnsteer", "kind", "schema_version"}), or None when it has none."""
    try:
        info = json.loads((path / schema.MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and "vulnsteer" in info and isinstance(info.get("kind"), str) else None


def is_marked(path: Path, kind: str) -> bool:
    info = marker(path)
    return info is not None and info["kind"] == kind


def mark(path: Path, kind: str) -> None:
    """Write the marker into a folder this process just claimed (first, before any other file)."""
    atomic_write_text(path / schema.MARKER, json.dumps({
        "vulnsteer": __version__, "kind": kind, "schema_version": schema.SCHEMA_VERSION,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}, indent=1) + "\n")


def marked_ancestor(path: Path) -> Path | None:
    """The nearest folder above `path` that vulnsteer marked (writing inside another's run folder is refused)."""
    for parent in path.parents:
        if marker(parent) is not None:
            return parent
    return None


def check_writable(path: Path, option: str) -> None:
    """Refuse, in one line, a folder that cannot be created or written: a file in its place, a read-only
    parent. Tried for real (a temporary folder made and removed) because permission bits do not tell: root
    passes os.access on a read-only file system."""
    if path.exists() and not path.is_dir():
        raise VulnsteerError(f"{option} {path} is a file, not a folder; choose another {option}")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise VulnsteerError(f"{option} {path}: {existing} is a file, not a folder; choose another {option}")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".vulnsteer-check-", dir=existing))
    except OSError as exc:
        raise VulnsteerError(f"{option} {path}: cannot write in {existing} ({exc.strerror}); choose a writable "
                             f"{option}") from None
