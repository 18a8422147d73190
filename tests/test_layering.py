"""The house's shape: data flows one way, and each floor imports only those below it.

nba/ is the bottom floor (no I/O, imports none of the other packages); cli/ is the top
(it wires everything); no package imports one above it, and modules of one package
import each other without cycles.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parents[1]
UPPER_FLOORS = {"features", "simulator", "training", "serving", "experiments", "cli"}
#: Which of the project's packages each package may import.
ALLOWED: dict[str, set[str]] = {
    "nba": set(),
    "features": {"nba"},
    "simulator": {"nba", "features"},
    "training": {"nba", "features", "simulator"},
    "experiments": {"nba", "features", "simulator", "training"},
    "serving": {"nba", "features", "training", "experiments"},
    "cli": {"nba", "features", "simulator", "training", "experiments", "serving"},
}
IO_MODULES = {
    "socket",
    "subprocess",
    "requests",
    "urllib",
    "http",
    "redis",
    "mlflow",
    "sqlite3",
    "shutil",
}
IO_CALLS = {"open"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_decision_core_imports_no_upper_floor_and_no_io() -> None:
    offenders = {}
    for path in sorted((ROOT / "nba").rglob("*.py")):
        bad = _imports(path) & (UPPER_FLOORS | IO_MODULES)
        calls = {
            n.func.id
            for n in ast.walk(ast.parse(path.read_text()))
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in IO_CALLS
        }
        if bad or calls:
            offenders[str(path.relative_to(ROOT))] = sorted(bad | calls)
    assert offenders == {}, f"nba/ must stay pure: {offenders}"


def test_the_checker_would_see_an_offender(tmp_path: Path) -> None:
    sample = tmp_path / "bad.py"
    sample.write_text("import redis\nfrom features.batch import build_profiles\n")
    assert _imports(sample) & (UPPER_FLOORS | IO_MODULES) == {"redis", "features"}


def test_each_package_imports_only_the_floors_below_it() -> None:
    offenders = {}
    for package, allowed in ALLOWED.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            bad = (_imports(path) & set(ALLOWED)) - allowed - {package}
            if bad:
                offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}, f"imports against the one-way flow: {offenders}"


def _module_graph(package: str) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports (at any depth of the file)."""
    modules = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): path
        for path in (ROOT / package).rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            found |= {t for t in targets if t in modules and t != name and t != package}
        graph[name] = found
    return graph


def test_no_import_cycles_between_modules() -> None:
    cycles = []
    for package in ALLOWED:
        graph = _module_graph(package)
        for start in graph:
            stack, seen = [(start, [start])], set()
            while stack:
                node, trail = stack.pop()
                for nxt in graph[node]:
                    if nxt == start:
                        cycles.append(" -> ".join([*trail, start]))
                    elif nxt not in seen:
                        seen.add(nxt)
                        stack.append((nxt, [*trail, nxt]))
    assert cycles == [], f"import cycles: {sorted(set(cycles))[:5]}"
