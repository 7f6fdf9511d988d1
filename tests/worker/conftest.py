from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devices import events as ev
from fablab.extensions import db
from fablab.services import machines as machine_service
from fablab.services import usage as usage_service
from fablab.worker.ingest import Incoming
from tests.support.broker import start_broker

ALL_DAY = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
RULES = {"slot_minutes": 15, "min_minutes": 15, "max_minutes": 240, "opening_hours": ALL_DAY, "horizon_days": 14,
         "buffer_minutes": 0, "checkin_grace_minutes": 15, "max_hours_per_day": None, "max_hours_per_week": None,
         "max_future_bookings": None, "qualification_required": True}


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory):
    b = start_broker(tmp_path_factory.mktemp("worker-broker"))
    yield b
    b.close()


@pytest.fixture
def lab(app_ctx, make_member, make_machine) -> dict[str, Any]:
    printer = make_machine("printer-1", name="Printer One", type_slug="3d_printer", policy=RULES)
    laser = make_machine("laser-1", name="Laser One", type_slug="laser_cutter", policy=RULES)
    ada = make_member("ada@example.org", name="Ada Lovelace", badge="04A1B2C3")
    bo = make_member("bo@example.org", name="Bo Berg", badge="04FFEE11")
    for m in (printer, laser):
        machine_service.grant(ada, by=None, machine=m)
    bridge, password = usage_service.add_bridge("bridge-a", ["printer-1"])
    usage_service.add_bridge("bridge-b", ["laser-1"])
    db.session.commit()
    return {"printer": printer, "laser": laser, "ada": ada, "bo": bo}


def t(minutes: float, base: datetime | None = None) -> datetime:
    if base is None:  # on the 15-minute booking grid, so booking times built from it are aligned
        now = datetime.now(UTC)
        base = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
    return base + timedelta(minutes=minutes)


@pytest.fixture
def event() -> Callable[..., Incoming]:
    seqs: dict[str, int] = {}

    def make(machine: str, etype: str, at: datetime, session_id: str = "s1", src: str = "bridge-a",
             **kw: Any) -> Incoming:
        seqs[machine] = seqs.get(machine, 0) + 1
        msg = ev.MachineEvent(machine=machine, src=src, ts=ev.utc_now_iso(at), type=etype, session_id=session_id,
                              seq=seqs[machine], **kw)
        return Incoming(msg.topic(), ev.encode(msg))

    return make


def status(machine: str, state: str, at: datetime, src: str = "bridge-a", progress: float | None = None) -> Incoming:
    msg = ev.MachineStatus(machine=machine, src=src, ts=ev.utc_now_iso(at), state=state,
                           job=ev.JobInfo(file="benchy.gcode", progress=progress) if progress is not None else None)
    return Incoming(msg.topic(), ev.encode(msg))
