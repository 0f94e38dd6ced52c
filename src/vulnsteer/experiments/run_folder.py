"""A run folder (docs/RUN_FOLDER.md): written file by file, atomically, with its status in config.json.

config.json says whether the run finished: `status` is running, finished, failed or interrupted, with the
pid and host of the process that wrote it, so a folder left "running" by a killed process can be told
stale. A `.lock` file (created exclusively) keeps a second process out while one writes. A folder is
never reused by accident: another run's folder is replaced only with force, and a non-empty folder that
is not a run folder is never touched.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import secrets
import shutil
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from vulnsteer import __version__
from vulnsteer.errors import VulnsteerError
from vulnsteer.experiments import schema
from vulnsteer.io import atomic_write_text

LOCK = ".lock"
STATUSES = ("running", "finished", "failed", "interrupted")


def _clean(value: Any) -> Any:
    """JSON has no NaN: write null, so every reader (browsers, jq) accepts the files."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def read_config(path: Path) -> dict[str, Any] | None:
    """The folder's config.json as a dict, or None when it has none (or an unreadable one)."""
    try:
        cfg = json.loads((path / schema.CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return cfg if isinstance(cfg, dict) and "command" in cfg else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def holder(path: Path) -> dict[str, Any] | None:
    """Who holds the folder's lock, when a live process on this host does (a dead holder's lock is stale)."""
    try:
        info = json.loads((path / LOCK).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or not isinstance(info.get("pid"), int):
        return None
    if info.get("host") == socket.gethostname() and not _alive(info["pid"]):
        return None
    return info


def is_stale(cfg: dict[str, Any]) -> bool:
    """A folder left "running" by a process that no longer runs on this host."""
    return (cfg.get("status") == "running" and cfg.get("host") == socket.gethostname()
            and isinstance(cfg.get("pid"), int) and not _alive(cfg["pid"]))


@dataclass
class RunDir:
    """A run folder; every write is complete-file-or-nothing so an interrupted run leaves valid files."""

    path: Path
    config: dict[str, Any] = field(default_factory=dict)
    _started: float = field(default_factory=time.time)

    @classmethod
    def create(cls, out: Path | None, command: str, config: dict[str, Any], force: bool = False) -> RunDir:
        path = _claim(out, command, force)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        run = cls(path, {"command": command, "vulnsteer": __version__, "schema_version": schema.SCHEMA_VERSION,
                         "status": "running", "pid": os.getpid(), "host": socket.gethostname(), "started": stamp,
                         "started_at": _now(), "ended_at": None, **config, "stages": {}})
        run.write_json(schema.CONFIG, run.config)
        return run

    def finish(self, status: str) -> None:
        """Record how the run ended and let go of the folder."""
        assert status in STATUSES
        self.config.update(status=status, ended_at=_now(), wall_seconds=round(time.time() - self._started, 2))
        self.write_json(schema.CONFIG, self.config)
        (self.path / LOCK).unlink(missing_ok=True)

    def stage(self, name: str, seconds: float) -> None:
        self.config["stages"][name] = round(seconds, 2)
        self.config["wall_seconds"] = round(time.time() - self._started, 2)
        self.write_json(schema.CONFIG, self.config)

    def note(self, text: str) -> None:
        """A line the report must show (something skipped or not available), kept in config.json."""
        self.config.setdefault("notes", []).append(text)
        self.write_json(schema.CONFIG, self.config)

    def write_json(self, name: str, obj: Any) -> Path:
        return atomic_write_text(self.path / name, json.dumps(_clean(obj), indent=1, allow_nan=False) + "\n")

    def write_jsonl(self, name: str, rows: Iterable[dict[str, Any]]) -> Path:
        return atomic_write_text(self.path / name, "".join(json.dumps(_clean(r), allow_nan=False) + "\n" for r in rows))

    def write_csv(self, name: str, rows: Sequence[dict[str, Any]]) -> Path:
        buf = io.StringIO(newline="")
        if rows:
            writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(_clean(list(rows)))
        return atomic_write_text(self.path / name, buf.getvalue())


def check_out(path: Path, force: bool) -> bool:
    """Whether `path` may be written (True: it holds an old run that force will clear); a one-line error
    otherwise. Checked before anything slow, and again when the folder is claimed."""
    if path.exists() and not path.is_dir():
        raise VulnsteerError(f"--out {path} is a file, not a folder; choose another --out")
    if not (path.is_dir() and any(path.iterdir())):
        return False
    if (who := holder(path)) is not None:
        raise VulnsteerError(f"--out {path} is being written by another vulnsteer process (pid {who.get('pid')} "
                             f"on {who.get('host')}); wait for it or choose another --out")
    cfg = read_config(path)
    if cfg is None:
        raise VulnsteerError(f"--out {path} is not empty and is not a vulnsteer run folder; choose an empty or new folder")
    if not force:
        raise VulnsteerError(f"--out {path} holds another run ({cfg.get('command')}, status "
                             f"{cfg.get('status', 'unknown')}); pass --force to replace it, or choose another --out")
    return True


def _claim(out: Path | None, command: str, force: bool) -> Path:
    """A folder this process may write: a new unique one, or `out` when empty, or `out` holding an old run
    with force (cleared first). Takes its lock."""
    if out is None:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        while True:  # unique even for two runs started in the same second
            path = Path("runs") / f"{stamp}-{command}-{secrets.token_hex(2)}"
            try:
                path.mkdir(parents=True, exist_ok=False)
                break
            except FileExistsError:
                continue
    else:
        path = Path(out)
        if check_out(path, force):
            for child in path.iterdir():  # force: clear the old run, keep the folder itself
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        path.mkdir(parents=True, exist_ok=True)
    _lock(path)
    return path


def _lock(path: Path) -> None:
    info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": _now()})
    for _ in range(2):
        try:
            fd = os.open(path / LOCK, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if holder(path) is not None:
                raise VulnsteerError(f"--out {path} is being written by another vulnsteer process; choose another "
                                     "--out") from None
            (path / LOCK).unlink(missing_ok=True)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(info)
        return
    raise VulnsteerError(f"--out {path}: could not take its lock; retry")
