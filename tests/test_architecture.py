"""The design's dependency rules and type checks hold: import-linter contracts (pyproject.toml) and mypy
(strict on fablab/domain and devices), plus the size bar for modules."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    exe = BIN / tool if (BIN / tool).exists() else shutil.which(tool)
    if exe is None:
        pytest.fail(f"{tool} is not installed (it is in the test extra of pyproject.toml)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "firmware-bridge")]))
    return subprocess.run([str(exe), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_import_contracts_hold() -> None:
    result = _run("lint-imports")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "broken" in result.stdout and " 0 broken" in result.stdout


def test_mypy_is_clean() -> None:
    result = _run("mypy")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def test_no_module_grows_past_the_size_bar() -> None:
    sizes = {p.relative_to(ROOT).as_posix(): len(p.read_text().splitlines())
             for base in ("fablab", "devices", "firmware-bridge") for p in (ROOT / base).rglob("*.py")}
    too_big = {k: v for k, v in sizes.items() if v > 650}
    assert not too_big, f"split these by what they do (docs/architecture.md): {too_big}"
