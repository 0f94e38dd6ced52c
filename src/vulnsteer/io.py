"""The small file operations every stage shares: atomic writes, SHA-256 of a file, reading UTF-8 text.

One implementation each, so that "a reader never sees a half-written file" and "a bad file is one line
that names it" hold everywhere alike.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from vulnsteer import progress as _progress
from vulnsteer.errors import DataError

_CHUNK = 8 << 20
_MEMO_NAME = "file-sha256.json"
_PROGRESS_MIN_BYTES = 64 << 20  # below this, reading is too quick for a bar to be worth drawing


def read_chunks(paths: Sequence[Path], description: str) -> Iterator[bytes]:
    """The bytes of `paths` in order, in chunks, with progress on stderr for large files (joins, hashes): a bar
    on a terminal, else a line every 10% (a notebook or a log otherwise saw a minute of silence)."""
    total = sum(p.stat().st_size for p in paths)
    if total >= _PROGRESS_MIN_BYTES and not _progress.console.is_terminal:
        with _progress.progress_bar(f"{description} (MiB)", total=total >> 20) as advance:
            done = 0
            for chunk in _chunks(paths):
                before, done = done >> 20, done + len(chunk)
                advance((done >> 20) - before)
                yield chunk
        return
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True, disable=total < _PROGRESS_MIN_BYTES,
                  console=_progress.console) as progress:
        task = progress.add_task(description, total=total)
        for chunk in _chunks(paths):
            progress.advance(task, len(chunk))
            yield chunk


def _chunks(paths: Sequence[Path]) -> Iterator[bytes]:
    for path in paths:
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                yield chunk


def atomic_write_bytes(path: Path, data: bytes, fsync: bool = False) -> Path:
    """Write `data` to `path` through a temporary file and a rename: readers see the old file or the new one.

    fsync=True also flushes the data to disk before the rename, so a power loss cannot leave a renamed
    file of zeros (what caches that are trusted on the next run need).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_text(path: Path, text: str, fsync: bool = False) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), fsync=fsync)


def sha256_file(path: Path, memo_dir: Path | None = None) -> str:
    """Streaming SHA-256 of `path`; memoised in `memo_dir` by (absolute path, size, mtime_ns) when given,
    so a multi-GB file is read in full once rather than on every load."""
    path = Path(path)
    stat = path.stat()
    key = str(path.resolve())
    memo_path = memo_dir / _MEMO_NAME if memo_dir is not None else None
    memo: dict[str, dict] = {}
    if memo_path is not None and memo_path.is_file():
        try:
            loaded = json.loads(memo_path.read_text())
            memo = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            memo = {}  # a corrupt memo only costs a re-hash
        hit = memo.get(key)
        if isinstance(hit, dict) and hit.get("size") == stat.st_size and hit.get("mtime_ns") == stat.st_mtime_ns:
            return str(hit["sha256"])
    digest = hashlib.sha256()
    for chunk in read_chunks([path], f"hashing {path.name}"):
        digest.update(chunk)
    sha = digest.hexdigest()
    if memo_path is not None:
        memo[key] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sha}
        atomic_write_text(memo_path, json.dumps(memo, indent=1, sort_keys=True))
    return sha


def pid_alive(pid: int) -> bool:
    """Whether process `pid` runs on this host (a lock or temporary it left is stale when it does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def read_utf8(path: Path, hint: str = "check that the file exists and is readable", utf8_hint: str = "") -> str:
    """A UTF-8 file's text; one-line DataError naming the file when unreadable or not UTF-8."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror}); {hint}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 (bad byte at offset {exc.start}); re-save it as UTF-8{utf8_hint}") from None
