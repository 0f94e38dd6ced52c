"""Reading a run folder's files (docs/RUN_FOLDER.md) for the report: a missing file reads as None, a broken
one is a one-line error naming it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vulnsteer.errors import DataError
from vulnsteer.experiments.run_folder import schema
from vulnsteer.experiments.run_folder.run_dir import is_stale
from vulnsteer.io import read_utf8


class Run:
    """Lazy reader for the files of one run folder; a missing file reads as None."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = Path(run_dir)
        self._cache: dict[str, Any] = {}

    def json(self, rel: str) -> Any:
        path = self.dir / rel
        if rel not in self._cache:
            try:
                text = read_utf8(path, hint="rerun the stage that writes it") if path.is_file() else None
                self._cache[rel] = None if text is None else json.loads(text)
            except (ValueError, RecursionError) as e:
                raise DataError(f"{path}: not valid JSON ({type(e).__name__}); rerun the stage that writes it") from None
        return self._cache[rel]

    def jsonl(self, rel: str) -> list[dict] | None:
        path = self.dir / rel
        if not path.is_file():
            return None
        rows = []
        lines = read_utf8(path, hint="rerun the stage that writes it").split("\n")
        for number, line in enumerate(lines, start=1):
            if line.strip():
                try:
                    row = json.loads(line)
                except (ValueError, RecursionError) as e:
                    raise DataError(f"{path}:{number}: not valid JSON ({type(e).__name__})") from None
                if not isinstance(row, dict):
                    raise DataError(f"{path}:{number}: expected a JSON object per line")
                rows.append(row)
        return rows


def readout_and_scope(run: Run) -> tuple[str, str]:
    """Where the probes and vectors read the residuals, and which positions were steered (config.json); a run
    from before either was a choice read the answer position and steered it."""
    read = run.json(schema.CONFIG)
    cfg: dict = read if isinstance(read, dict) else {}
    steer: dict = cfg["steer"] if isinstance(cfg.get("steer"), dict) else {}
    return str(cfg.get("readout") or "answer"), str(steer.get("scope") or "answer")


def unfinished(cfg: object) -> str | None:
    """None for a run that finished; else what its config.json says about how it ended."""
    if not isinstance(cfg, dict):
        return "no readable config.json"
    status = cfg.get("status", "finished")  # folders from before statuses were recorded finished or failed loudly
    if status == "finished":
        return None
    if status == "running" and is_stale(cfg):
        return f"status running, but its process {cfg.get('pid')} on {cfg.get('host')} is gone: it was killed"
    return f"status {status}"
