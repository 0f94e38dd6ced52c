"""Data flows data -> model -> activations -> vectors -> steering -> evaluation -> prompting -> experiments -> report:
no stage folder imports a later one (imports inside functions included), no module imports itself back
through others, and no stage reaches up to the package (`vulnsteer/__init__.py` sits on top of them all)."""

from __future__ import annotations

import ast
from pathlib import Path

import vulnsteer

STAGES = ["data", "model", "activations", "vectors", "steering", "evaluation", "prompting", "experiments", "report"]
PACKAGE = Path(vulnsteer.__file__).parent


def _module_name(path: Path, package: Path) -> str:
    parts = list(path.relative_to(package).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(["vulnsteer", *parts])


def _imports(path: Path, package: Path | None = None) -> list[tuple[str, list[str]]]:
    """(module, names imported from it) for every import anywhere in `path`; `import a` gives (a, []).
    Relative imports are made absolute where `package` is given, skipped otherwise."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                if package is None:
                    continue
                here = _module_name(path, package).split(".")
                base = here[: len(here) - node.level + (path.name == "__init__.py")]
                module = ".".join([*base, *([module] if module else [])])
            out.append((module, [a.name for a in node.names]))
    return out


def _imported_modules(path: Path) -> list[str]:
    """Every module or name `path` imports: `from a import b` gives both `a` and `a.b`."""
    return [m for module, names in _imports(path) for m in (module, *(f"{module}.{n}" for n in names))]


def violations(package: Path = PACKAGE) -> list[str]:
    found = []
    for i, stage in enumerate(STAGES):
        for path in sorted((package / stage).rglob("*.py")):
            for module in _imported_modules(path):
                parts = module.split(".")
                if len(parts) > 1 and parts[0] == "vulnsteer" and parts[1] in STAGES[i + 1:]:
                    found.append(f"{path.relative_to(package)} imports {module}")
    return sorted(set(found))


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the modules of this package it imports: `from a import b` reaches module `a.b` where b is
    one, else `a` (a package's `__init__` included, `vulnsteer` itself too)."""
    files = {_module_name(p, package): p for p in sorted(package.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        targets = set()
        for module, names in _imports(path, package):
            targets |= {f"{module}.{n}" if f"{module}.{n}" in files else module for n in names} or {module}
        graph[name] = {t for t in targets if t in files and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def imports_of_the_package(package: Path = PACKAGE) -> list[str]:
    """Stage modules that import `vulnsteer` itself (`from vulnsteer import __version__`)."""
    found = []
    for stage in STAGES:
        for path in sorted((package / stage).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == "vulnsteer") or (
                        isinstance(node, ast.Import) and any(a.name == "vulnsteer" for a in node.names)):
                    found.append(str(path.relative_to(package)))
    return sorted(set(found))


def test_no_stage_imports_a_later_one():
    assert violations() == []


def test_the_check_catches_a_backward_import(tmp_path):
    for stage in STAGES:
        (tmp_path / stage).mkdir()
    (tmp_path / "steering" / "x.py").write_text("def f():\n    from vulnsteer.evaluation.metrics import auroc\n")
    assert violations(tmp_path) == ["steering/x.py imports vulnsteer.evaluation.metrics",
                                    "steering/x.py imports vulnsteer.evaluation.metrics.auroc"]


def test_no_import_circle():
    assert cycles(import_graph()) == []


def test_no_stage_imports_the_package_itself():
    assert imports_of_the_package() == []


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_the_circle_check_catches_function_level_and_relative_imports(tmp_path):
    package = _tree(tmp_path, {
        "__init__.py": "", "model/__init__.py": "", "report/__init__.py": "", "io.py": "",
        "model/a.py": "from vulnsteer.model import b\nfrom vulnsteer.io import atomic\n",
        "model/b.py": "def f():\n    from vulnsteer.model.a import g\n",
        "report/c.py": "from . import d\n", "report/d.py": "from .c import h\n", "report/e.py": "from . import c\n",
    })
    assert cycles(import_graph(package)) == [["vulnsteer.model.a", "vulnsteer.model.b"],
                                             ["vulnsteer.report.c", "vulnsteer.report.d"]]


def test_the_package_check_catches_an_import_of_vulnsteer(tmp_path):
    package = _tree(tmp_path, {f"{s}/__init__.py": "" for s in STAGES} | {
        "experiments/x.py": "from vulnsteer import __version__\n",
        "report/y.py": "def f():\n    import vulnsteer\n", "report/z.py": "from vulnsteer.io import atomic\n"})
    assert imports_of_the_package(package) == ["experiments/x.py", "report/y.py"]


def test_the_notebook_api_scores_without_the_experiments():
    """answer_score, read_activations, probe_layers and generate_answer run on the stages below experiments."""
    graph = import_graph()
    for module in ("vulnsteer.api_notebook", "vulnsteer.api_inputs"):
        later = sorted(m for m in graph[module] if m.split(".")[1] in ("experiments", "report"))
        assert later == [], f"{module} imports {later}"
