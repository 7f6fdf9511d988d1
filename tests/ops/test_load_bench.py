"""bench/load.py --quick: the real stack (gunicorn, shared-subscription ingest workers, Mosquitto,
PostgreSQL) under 50 clients and 20 bridges answers without a single 5xx or transport error, keeps no
overlapping held bookings and stores every bridge message. PostgreSQL only (the bench needs it)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fablab.demo.broker import find_mosquitto

ROOT = Path(__file__).resolve().parents[2]
PG_URL = os.environ.get("FABLAB_TEST_DATABASE_URL", "")

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_URL.startswith("postgresql"), reason="needs FABLAB_TEST_DATABASE_URL (PostgreSQL)"),
    pytest.mark.skipif(find_mosquitto() is None, reason="needs mosquitto"),
]


def _figure(out: str, label: str) -> int:
    m = re.search(rf"^{label}: (\d+)$", out, re.MULTILINE)
    assert m is not None, f"no '{label}:' line in:\n{out}"
    return int(m.group(1))


def test_quick_load_run_has_no_errors_and_no_overlaps() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), str(ROOT / "firmware-bridge"), os.environ.get("PYTHONPATH", "")) if p)}
    proc = subprocess.run([sys.executable, str(ROOT / "bench/load.py"), PG_URL, "--quick"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=150)
    out = proc.stdout
    assert _figure(out, "errors") == 0, out
    assert _figure(out, "overlaps") == 0, out
    assert _figure(out, "ingest lost") == 0, out
    # the run did real work: bookings were made and some racing requests were refused
    m = re.search(r"(\d+) booked, (\d+) conflicts \(409\)", out)
    assert m is not None and int(m.group(1)) > 0, out
    assert proc.returncode == 0, out + proc.stderr[-2000:]
