"""Explicit wiring (fablab/wiring.py): listeners are registered by create_app, once, never on import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fablab import wiring
from fablab.services import bookings, waitlist, windows

ROOT = Path(__file__).resolve().parents[1]


def test_create_app_wires_each_listener_once(app) -> None:
    wiring.wire()
    wiring.wire()
    assert bookings._guards.count(windows.direct_booking_block) == 1
    assert bookings._time_freed_hooks.count(waitlist.on_time_freed) == 1


def test_importing_the_features_registers_nothing() -> None:
    code = ("import fablab.services.windows, fablab.services.waitlist, fablab.services.effort, "
            "fablab.services.catch_up, fablab.worker.jobs\n"
            "from fablab.services import bookings\n"
            "print(len(bookings._guards), len(bookings._time_freed_hooks))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "firmware-bridge")])}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["0", "0"]
