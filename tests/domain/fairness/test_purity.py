"""The fairness rules stay pure: no web, database, broker or serial imports, no app layers, no clock reads."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import fablab.domain.fairness as package

MODULES = sorted(Path(package.__file__).parent.glob("*.py"))
FORBIDDEN_ROOTS = {"flask", "flask_sqlalchemy", "flask_wtf", "sqlalchemy", "alembic", "paho", "serial", "werkzeug"}
FORBIDDEN_FABLAB = ("fablab.models", "fablab.services", "fablab.extensions", "fablab.web", "fablab.api",
                    "fablab.worker", "fablab.database")
CLOCK_READS = {"now", "utcnow", "today", "time", "perf_counter", "monotonic"}


def _imports(path: Path) -> list[str]:
    package_parts = ["fablab", "domain", "fairness"]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package_parts[:len(package_parts) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            out += [module] + [f"{module}.{a.name}" for a in node.names]
    return out


def test_there_are_modules() -> None:
    assert {p.stem for p in MODULES} >= {"clock", "period", "tally", "figures", "heatmap", "replay", "draws"}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_imports_only_pure_code(path: Path) -> None:
    for name in _imports(path):
        assert name.split(".")[0] not in FORBIDDEN_ROOTS, name
        assert not name.startswith(FORBIDDEN_FABLAB), name


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_reads_no_clock(path: Path) -> None:
    tree = ast.parse(path.read_text())
    calls = {n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
    calls |= {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert not calls & CLOCK_READS, calls & CLOCK_READS


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_small_and_documented(path: Path) -> None:
    text = path.read_text()
    assert len(text.splitlines()) < 400
    assert ast.get_docstring(ast.parse(text))
