#!/usr/bin/env bash
# Rewrite constraints.txt from the current environment: the exact versions of vulnsteer's dependency closure
# (with the dev, ray, gemma-3-270m and llama-cpp extras). Run it after the suite passed on newly chosen versions.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
head -n 3 constraints.txt > constraints.txt.new
"$PY" - >> constraints.txt.new <<'PYEOF'
import importlib.metadata as md
import re
from packaging.requirements import Requirement

def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()

seen: dict[str, str] = {}
def walk(name: str, extras: tuple[str, ...] = ()) -> None:
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        return
    seen[norm(name)] = dist.version.split("+")[0]
    for text in dist.requires or []:
        req = Requirement(text)
        if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in ("", *extras)):
            if norm(req.name) not in seen:
                walk(req.name, tuple(req.extras))

walk("vulnsteer", ("dev", "ray", "gemma-3-270m", "llama-cpp"))
seen.pop("vulnsteer", None)
print("\n".join(f"{k}=={v}" for k, v in sorted(seen.items())))
PYEOF
mv constraints.txt.new constraints.txt
