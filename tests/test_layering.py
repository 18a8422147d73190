"""The house's shape: nba/ is the bottom floor (no I/O, imports none of the other packages)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parents[1]
UPPER_FLOORS = {"features", "training", "serving", "experiments"}
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
