"""Data flows data -> model -> activations -> vectors -> steering -> evaluation -> experiments -> report:
no stage folder imports a later one (imports inside functions included)."""

from __future__ import annotations

import ast
from pathlib import Path

import vulnsteer

STAGES = ["data", "model", "activations", "vectors", "steering", "evaluation", "experiments", "report"]
PACKAGE = Path(vulnsteer.__file__).parent


def _imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
            out += [f"{node.module}.{a.name}" for a in node.names]
    return out


def violations(package: Path = PACKAGE) -> list[str]:
    found = []
    for i, stage in enumerate(STAGES):
        for path in sorted((package / stage).rglob("*.py")):
            for module in _imported_modules(path):
                parts = module.split(".")
                if len(parts) > 1 and parts[0] == "vulnsteer" and parts[1] in STAGES[i + 1:]:
                    found.append(f"{path.relative_to(package)} imports {module}")
    return sorted(set(found))


def test_no_stage_imports_a_later_one():
    assert violations() == []


def test_the_check_catches_a_backward_import(tmp_path):
    for stage in STAGES:
        (tmp_path / stage).mkdir()
    (tmp_path / "steering" / "x.py").write_text("def f():\n    from vulnsteer.evaluation.metrics import auroc\n")
    assert violations(tmp_path) == ["steering/x.py imports vulnsteer.evaluation.metrics",
                                    "steering/x.py imports vulnsteer.evaluation.metrics.auroc"]
