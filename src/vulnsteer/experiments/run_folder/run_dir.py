"""A run folder (docs/RUN_FOLDER.md): written file by file, atomically, with its status in config.json.

config.json says whether the run finished: `status` is running, finished, failed or interrupted, with the
pid and host of the process that wrote it, so a folder left "running" by a killed process can be told
stale. A `.lock` file (created exclusively) keeps a second process out while one writes. A folder is
never reused by accident: another run's folder is replaced only with force, and a non-empty folder that
is not a run folder is never touched.
"""

from __future__ import annotations

import csv
import hashlib
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

from vulnsteer.errors import VulnsteerError
from vulnsteer.experiments.inputs import changed_inputs, describe
from vulnsteer.experiments.run_folder import schema
from vulnsteer.experiments.run_folder.folders import RUN, check_writable, is_marked, mark, marked_ancestor, marker, resolved
from vulnsteer.io import atomic_write_text, pid_alive
from vulnsteer.progress import log
from vulnsteer.version import __version__

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


def holder(path: Path) -> dict[str, Any] | None:
    """Who holds the folder's lock, when a live process on this host does (a dead holder's lock is stale)."""
    try:
        info = json.loads((path / LOCK).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or not isinstance(info.get("pid"), int):
        return None
    if info.get("host") == socket.gethostname() and not pid_alive(info["pid"]):
        return None
    return info


def is_stale(cfg: dict[str, Any]) -> bool:
    """A folder left "running" by a process that no longer runs on this host."""
    return (cfg.get("status") == "running" and cfg.get("host") == socket.gethostname()
            and isinstance(cfg.get("pid"), int) and not pid_alive(cfg["pid"]))


@dataclass
class RunDir:
    """A run folder; every write is complete-file-or-nothing so an interrupted run leaves valid files."""

    path: Path
    config: dict[str, Any] = field(default_factory=dict)
    _started: float = field(default_factory=time.time)
    resumed: bool = False  # an unfinished run of the same configuration was found here: reuse its stages

    @classmethod
    def create(cls, out: Path | None, command: str, config: dict[str, Any], force: bool = False,
               inputs: dict[str, str] | None = None) -> RunDir:
        """Claim the folder; `inputs` (experiments/inputs.py) are recorded, and an interrupted run is resumed
        only when they match the ones it recorded."""
        path, old = _claim(out, command, force, config, inputs)
        if old is not None:  # resume: keep what the interrupted run finished, say so, carry on
            old.update(status="running", pid=os.getpid(), host=socket.gethostname(), ended_at=None,
                       resumed=[*old.get("resumed", []), _now()])
            run = cls(path, old, resumed=True)
        else:
            stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
            run = cls(path, {"command": command, "vulnsteer": __version__, "schema_version": schema.SCHEMA_VERSION,
                             "status": "running", "pid": os.getpid(), "host": socket.gethostname(), "started": stamp,
                             "started_at": _now(), "ended_at": None, **config, schema.STAGE_SECONDS: {}, "done": [],
                             **({"inputs": inputs} if inputs is not None else {})})
        run.write_json(schema.CONFIG, run.config)
        return run

    def is_done(self, stage: str) -> bool:
        """Whether a resumed run already finished `stage` (a fresh run has finished nothing) and its outputs
        are still as it wrote them (their SHA-256 in config.json's `checksums`); a stage with a missing or
        damaged output is dropped from `done`, to be computed again."""
        if not (self.resumed and stage in self.config.get("done", [])):
            return False
        sums = (self.config.get("checksums") or {}).get(stage)
        bad = [rel for rel, sha in sums.items() if sha256_or_none(self.path / rel) != sha] if isinstance(sums, dict) else ["?"]
        if not bad:
            return True
        log(f"{stage}: {', '.join(bad) if sums else 'its outputs'} missing or damaged since the interrupted run "
            "wrote them; computing the stage again")
        self.config["done"] = [s for s in self.config["done"] if s != stage]
        self.write_json(schema.CONFIG, self.config)
        return False

    def done(self, stage: str, outputs: Sequence[str] = ()) -> None:
        """Mark `stage` finished; its outputs (relative paths) were written before this, atomically, and their
        checksums are kept so a resumed run reuses them only while they are intact."""
        self.config.setdefault("checksums", {})[stage] = {rel: sha256_or_none(self.path / rel) for rel in outputs}
        self.config.setdefault("done", []).append(stage)
        self.write_json(schema.CONFIG, self.config)

    def finish(self, status: str) -> None:
        """Record how the run ended and let go of the folder."""
        assert status in STATUSES
        self.config.update(status=status, ended_at=_now(), wall_seconds=round(time.time() - self._started, 2))
        self.write_json(schema.CONFIG, self.config)
        (self.path / LOCK).unlink(missing_ok=True)

    def stage(self, name: str, seconds: float) -> None:
        self.config[schema.STAGE_SECONDS][name] = round(seconds, 2)
        self.config["wall_seconds"] = round(time.time() - self._started, 2)
        self.write_json(schema.CONFIG, self.config)

    def note(self, text: str) -> None:
        """A line the report must show (something skipped or not available), kept in config.json."""
        notes = self.config.setdefault("notes", [])
        if text not in notes:  # a resumed run meets the same facts again
            notes.append(text)
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


def sha256_or_none(path: Path) -> str | None:
    """The file's SHA-256, None where it cannot be read (a missing output reads as damaged)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def same_run(old: dict[str, Any], command: str, config: dict[str, Any]) -> bool:
    """An unfinished run of the same command and settings (compared as written to config.json)."""
    if old.get("status") == "finished" or old.get("command") != command:
        return False
    if old.get("status") == "running" and not is_stale(old):
        return False
    return same_settings(old, config)


def same_settings(old: dict[str, Any], config: dict[str, Any]) -> bool:
    """Whether config.json's content `old` records these settings (compared as written)."""
    return all(json.dumps(_clean(old.get(k))) == json.dumps(_clean(v)) for k, v in config.items())


def check_out(path: Path, force: bool, command: str = "", config: dict[str, Any] | None = None,
              inputs: dict[str, str] | None = None) -> str:
    """What writing `path` means: "new" (empty or absent), "resume" (an unfinished run of the same settings:
    its finished stages are reused) or "clear" (another run, replaced because of force); a one-line error
    otherwise. Only a folder carrying vulnsteer's run marker is a run folder (folders.py). `path` is
    resolved first. Checked before anything slow, and again when the folder is claimed."""
    path = resolved(path)
    check_writable(path, "--out")
    if (above := marked_ancestor(path)) is not None and (marker(above) or {}).get("kind") == RUN:
        raise VulnsteerError(f"--out {path} lies inside the vulnsteer run folder {above}; choose a folder outside it")
    if not path.is_dir() or not any(path.iterdir()):
        return "new"
    if (who := holder(path)) is not None:
        raise VulnsteerError(f"--out {path} is being written by another vulnsteer process (pid {who.get('pid')} "
                             f"on {who.get('host')}); wait for it or choose another --out")
    if not is_marked(path, RUN):
        raise VulnsteerError(f"--out {path} is not empty and is not a vulnsteer run folder (no {schema.MARKER}); "
                             "choose an empty or new folder")
    cfg = read_config(path)
    if force:
        return "clear"
    if cfg is not None and config is not None and same_run(cfg, command, config):
        if inputs is not None and (stale := changed_inputs(cfg.get("inputs"), inputs)):
            raise VulnsteerError(f"--out {path} holds an interrupted run of these settings, but {describe(stale)} "
                                 "changed since it started, so its results cannot be reused; pass --force to start "
                                 "it over, or choose another --out")
        return "resume"
    what = "no readable config.json" if cfg is None else f"{cfg.get('command')}, status {cfg.get('status', 'unknown')}"
    raise VulnsteerError(f"--out {path} holds another run ({what}); pass --force to replace it, or choose another --out")


def fresh_run_path(command: str) -> Path:
    """The default run folder, runs/<UTC time>-<command>-<4 hex>: named before the run starts (its first log
    line says it), created when the run claims it."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{stamp}-{command}-{secrets.token_hex(2)}"


def _claim(out: Path | None, command: str, force: bool, config: dict[str, Any],
           inputs: dict[str, str] | None = None) -> tuple[Path, dict[str, Any] | None]:
    """A folder this process may write: a new unique one, or `out` when empty, or `out` holding an old run
    with force (cleared first), or `out` holding an unfinished run of these settings (returned, to resume).
    Takes its lock."""
    old = None
    if out is None:
        while True:  # unique even for two runs started in the same second
            path = fresh_run_path(command)
            try:
                path.mkdir(parents=True, exist_ok=False)
                break
            except FileExistsError:
                continue
    else:
        path = resolved(out)
        mode = check_out(path, force, command, config, inputs)
        if mode == "resume":
            old = read_config(path)
        elif mode == "clear":
            for child in path.iterdir():  # force: clear the old run, keep the folder itself
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        path.mkdir(parents=True, exist_ok=True)
    if not is_marked(path, RUN):  # first, so a folder this process wrote is never taken for a user's
        mark(path, RUN)
    _lock(path)
    return path, old


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
