"""Reading data files: UTF-8 text and JSON with one-line errors naming the file, and no dangling links."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from vulnsteer.errors import DataError
from vulnsteer.io import read_utf8


def check_link(path: Path) -> Path:
    """`path`, or DataError if it is a symbolic link to nothing.

    Listing by `is_file()`/`is_dir()` would skip such a link without a word and leave its pair twin
    orphaned (a secure file with no vulnerable partner), which silently changes every pair count.
    """
    if path.is_symlink() and not path.exists():
        raise DataError(
            f"{path}: dangling symbolic link (to {os.readlink(path)}); restore its target or remove the link"
        )
    return path


def listing(folder: Path) -> list[Path]:
    """Entries of `folder` (hidden ones skipped), refusing dangling links."""
    return [check_link(p) for p in folder.iterdir() if not p.name.startswith(".")]


def read_text(path: Path, *, code: bool = True) -> str:
    """A UTF-8 file's text; DataError if unreadable, not UTF-8, or (for code) empty."""
    check_link(path)
    text = read_utf8(path, utf8_hint=" (e.g. `iconv -f latin1 -t utf-8`) or restore it from the SecLLMHolmes repository")
    if code and not text.strip():
        raise DataError(f"{path}: empty code file; restore it from the SecLLMHolmes repository or delete it")
    return text


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a data file; DataError naming the file if it is not one."""
    try:
        value = json.loads(read_text(path, code=False))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno}); restore it from SecLLMHolmes") from exc
    except (RecursionError, ValueError) as exc:  # nesting too deep, or a number past the int-conversion limit
        raise DataError(
            f"{path}: JSON nested too deeply or with a too-long number; restore it from SecLLMHolmes"
        ) from exc
    if not isinstance(value, dict):
        raise DataError(f"{path}: expected a JSON object; restore it from SecLLMHolmes")
    return value
