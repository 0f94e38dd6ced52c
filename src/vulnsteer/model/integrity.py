"""Checks that a directory of safetensors weights is whole: the model cache's checksums, and a cheap
header check for any folder (a user's model, or the cache).

Cost on a warm load: every weights file is checked against the sha256 recorded in the cache marker,
through the (path, size, mtime_ns) memo of `sources.sha256_file`. Re-hashing 2 GB at every start would
cost seconds on every command; the memo makes a warm check a stat per file, and any write to a file
(truncation, a partial copy, an editor) changes its size or mtime and so forces a full re-hash. Only a
same-size in-place edit that also restores the mtime would go unseen, which no accident does.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from vulnsteer.errors import ModelError
from vulnsteer.io import pid_alive, sha256_file

TMP_INFIX = ".tmp-"  # a conversion writes <weights_dir>.tmp-<pid>, then renames it into place


def check_safetensors(path: Path, what_to_do: str) -> None:
    """One-line ModelError naming `path` when its header is unreadable or its size disagrees with it."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else -1
            if n < 0 or n > size - 8:
                raise ModelError(f"{path}: truncated safetensors file ({size} bytes, header cut off); {what_to_do}")
            header = json.loads(fh.read(n))
        end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
    except ModelError:
        raise
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise ModelError(f"{path}: corrupted safetensors header ({type(exc).__name__}); {what_to_do}") from None
    if 8 + n + end != size:
        state = "truncated" if 8 + n + end > size else "longer than its header says"
        raise ModelError(f"{path}: {state} safetensors file ({size} of {8 + n + end} bytes); {what_to_do}")


def weight_checksums(directory: Path, memo_dir: Path | None) -> dict[str, str]:
    """{file name: sha256} of every *.safetensors in `directory`."""
    return {p.name: sha256_file(p, memo_dir=memo_dir) for p in sorted(directory.glob("*.safetensors"))}


def cache_problem(weights_dir: Path, marker: dict, memo_dir: Path | None) -> str | None:
    """Why a marked cache directory cannot be trusted (None when its weights match the marker's checksums)."""
    recorded = marker.get("weights")
    if not isinstance(recorded, dict) or not recorded:
        return "missing its weights checksums"
    present = sorted(p.name for p in weights_dir.glob("*.safetensors"))
    if present != sorted(recorded):
        return f"holding weights files {present}, not {sorted(recorded)}"
    for name, sha in recorded.items():
        try:
            check_safetensors(weights_dir / name, "rebuilding")
        except ModelError as exc:
            return str(exc).split(": ", 1)[-1].split(";")[0]
        if sha256_file(weights_dir / name, memo_dir=memo_dir) != sha:
            return f"holding a corrupted {name} (checksum differs)"
    return None


def clean_stale_temporaries(weights_dir: Path) -> None:
    """Remove conversion temporaries left by processes that died (killed mid-way, power cut).

    A pid names a process on this machine only: a cache shared between machines could see another
    machine's live conversion as dead; vulnsteer's cache is per user and machine.
    """
    prefix = weights_dir.name + TMP_INFIX
    if not weights_dir.parent.is_dir():
        return
    for tmp in weights_dir.parent.glob(prefix + "*"):
        pid = tmp.name[len(prefix) :]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def install_lock(directory: Path) -> Iterator[None]:
    """Exclusive lock on `directory` (flock on its fd) while one process checks and swaps a cache in.

    Without it, a process that found the cache stale could delete a copy another process had just
    renamed into place. Where flock does not exist (Windows) the swap runs unlocked, as before.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
