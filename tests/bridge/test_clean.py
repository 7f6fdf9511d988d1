"""The bridge cleans what machines say before it encodes it: no non-finite number and no over-long field
ever reaches the wire, and a message the contract still refuses never stops the machine loop."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from fablab_bridge import clean
from fablab_bridge.config import parse_config
from fablab_bridge.machine import MachineRunner
from fablab_bridge.store import Store

from devices import events
from devices.observations import Fault, JobFinished, JobStarted, Reading
from tests.bridge.conftest import payloads, wait_until

NAN, INF = math.nan, math.inf
LONG_FILE = "benchy_" + "x" * 393 + ".gcode"  # 400 characters, as an SD card may hold


def strict_json(raw: bytes) -> Any:
    """JSON as any other consumer reads it: NaN and Infinity are not JSON."""
    def refuse(token: str) -> None:
        raise AssertionError(f"non-finite number {token} on the wire")

    return json.loads(raw, parse_constant=refuse)


# --- the pure functions ---------------------------------------------------------------------------------


def test_limits_are_the_contracts() -> None:
    assert clean.LIMITS["job.file"] == 255 and clean.LIMITS["badge.uid"] == 64 and clean.LIMITS["reason"] == 500
    assert clean.LIMITS["detail"] == 4096 and clean.LIMITS["readings"] == 64 and clean.LIMITS["reading.name"] == 64
    assert clean.MAX_PAYLOAD == 64 * 1024
    for name in ("LIMITS", "MAX_PAYLOAD", "MAX_DEPTH"):  # the contract's own values win where it has them
        if hasattr(events, name):
            assert getattr(events, name) == getattr(clean, name) or name == "LIMITS"


@pytest.mark.parametrize(("value", "expected"), [
    (1.5, 1.5), (0, 0), (-3, -3), (NAN, None), (INF, None), (-INF, None), (True, None), ("1", None),
    (None, None), (2**63, None), (2**63 - 1, 2**63 - 1), (1e308, 1e308),
])
def test_number(value: Any, expected: Any) -> None:
    assert clean.number(value) == expected


def test_progress_is_clamped_or_dropped() -> None:
    assert clean.progress(0.5) == 0.5 and clean.progress(1.0000001) == 1.0 and clean.progress(-0.01) == 0.0
    assert clean.progress(NAN) is None and clean.progress(INF) is None and clean.progress(None) is None


def test_text_is_cut_and_made_storable() -> None:
    assert clean.text("ok", 10) == "ok"
    cut = clean.text("e" * 600, 500)
    assert cut is not None and len(cut) == 500 and cut.endswith("…") and cut.startswith("eee")
    assert clean.text("a\x00b", 10) == "ab"
    assert clean.text("lone \ud800 surrogate", 50) == "lone ? surrogate"
    assert clean.text(None, 5) is None and clean.text(42, 5) is None


def test_file_name_keeps_its_start_and_extension() -> None:
    name = clean.file_name(LONG_FILE)
    assert name is not None and len(name) == 255
    assert name.startswith("benchy_xxx") and name.endswith("….gcode")
    assert clean.file_name("benchy.gcode") == "benchy.gcode"
    no_ext = clean.file_name("y" * 300)
    assert no_ext is not None and len(no_ext) == 255 and no_ext.endswith("…")
    odd_ext = clean.file_name("a." + "b" * 300)  # no real extension: cut like any text
    assert odd_ext is not None and len(odd_ext) == 255
    assert clean.file_name("") is None and clean.file_name(None) is None and clean.file_name("\x00") is None


def test_badge_uid_too_long_is_dropped_never_cut() -> None:
    assert clean.badge_uid("04A1B2C3") == "04A1B2C3"
    assert clean.badge_uid("A" * 64) == "A" * 64
    assert clean.badge_uid("A" * 65) is None and clean.badge_uid("") is None and clean.badge_uid(None) is None


def test_readings_drop_what_cannot_be_sent_and_name_it() -> None:
    deep: Any = 1
    for key in "abcdefghijklmnopqrst":  # 20 levels: deeper than the contract allows
        deep = {key: deep}
    raw = {"temps": {"hotend": {"actual": NAN, "target": 210.0}, "bed": {"actual": INF}},
           "power_w": -INF, "progress": 0.5, "ts": "clash", "n" * 65: 1, "pins": "XYZ", "note": "t" * 300,
           "overrides": [100, NAN, 2**70], "deep": deep}
    out, dropped = clean.readings(raw)
    assert out["temps"] == {"hotend": {"target": 210.0}} and out["progress"] == 0.5 and out["pins"] == "XYZ"
    assert out["overrides"] == [100, None, None] and len(out["note"]) == 255
    assert "power_w" not in out and "ts" not in out and "n" * 65 not in out
    assert {"temps.hotend.actual", "temps.bed.actual", "power_w", "ts", "overrides[1]", "overrides[2]"} <= set(dropped)
    body = json.dumps(out, allow_nan=False)  # would raise on NaN
    assert body.count("{") <= clean.MAX_DEPTH + 5 and '"a": 1' not in body  # nesting cut at the contract's depth
    many = {f"r{i}": i for i in range(100)}
    kept, dropped = clean.readings(many)
    assert len(kept) == 64 and len(dropped) == 36


def test_detail_fits_the_contract() -> None:
    d = clean.detail({"message": "Thermal Runaway " * 1000, "file": LONG_FILE, "t": NAN})
    assert d is not None and "t" not in d and len(json.dumps(d)) <= 4096
    assert d["message"].startswith("Thermal Runaway")
    assert clean.detail({"message": "é" * 5000}) is not None  # measured as JSON escapes, as the contract does
    assert len(json.dumps(clean.detail({"message": "é" * 5000}))) <= 4096
    assert clean.detail(None) is None and clean.detail({"t": INF}) is None


def test_caps_within_limits() -> None:
    caps = clean.caps({"AUTOREPORT_TEMP": True, "x" * 70: True, "odd": "yes"} | {f"C{i}": False for i in range(80)})
    assert caps["AUTOREPORT_TEMP"] is True and "x" * 70 not in caps and "odd" not in caps and len(caps) == 64


# --- the machine runner: cleaned before encoding, and refused messages do not stop it ---------------------


class FakeLink:
    def __init__(self) -> None:
        self.sent: list[events.Message] = []

    def subscribe(self, topic: str, handler: Any) -> None:
        pass

    def on_connected(self, hook: Any) -> None:
        pass

    def publish_now(self, msg: events.Message) -> bool:
        try:  # as the real link: encode, and log and drop what the contract refuses
            events.encode(msg)
        except events.ContractError:
            return False
        self.sent.append(msg)
        return True


def _runner(tmp_path: Path) -> tuple[MachineRunner, FakeLink, Store]:
    cfg = parse_config({"bridge": {"id": "b1", "state_dir": str(tmp_path)},
                        "machine": [{"id": "m1", "driver": "octoprint"}]})
    link, store = FakeLink(), Store(tmp_path / "bridge.db")
    return MachineRunner(cfg.machines[0], "b1", link, store), link, store  # type: ignore[arg-type]


def _outbox(store: Store) -> list[dict]:
    out = []
    while (row := store.head()) is not None:
        out.append(strict_json(row.payload))
        events.decode(row.topic, row.payload)
        store.delete(row.id)
    return out


def test_runner_cleans_events_and_status(tmp_path: Path) -> None:
    runner, link, store = _runner(tmp_path)
    runner.observe([JobStarted(file=LONG_FILE), Reading({"progress": NAN, "temps": {"hotend": {"actual": NAN}}})])
    status = link.sent[-1]
    assert isinstance(status, events.MachineStatus) and status.job is not None
    assert status.job.file is not None and len(status.job.file) == 255 and status.job.progress is None
    runner.observe([Fault(reason="e" * 900, detail="line " * 2000), JobFinished(reason="done", energy_wh=NAN)])
    evs = _outbox(store)
    assert [e["type"] for e in evs] == ["session_started", "job_started", "error", "job_finished"]
    assert len(evs[1]["detail"]["file"]) == 255 and evs[1]["detail"]["file"].endswith(".gcode")
    assert len(evs[2]["reason"]) == 500 and len(json.dumps(evs[2]["detail"])) <= 4096
    assert "energy_wh" not in evs[3]
    store.close()


def test_a_refused_event_is_logged_and_the_runner_carries_on(tmp_path: Path, monkeypatch, caplog) -> None:
    runner, link, store = _runner(tmp_path)
    real = events.encode
    refuse = {"on": True}

    def encode(msg: events.Message) -> bytes:
        if refuse["on"] and isinstance(msg, events.MachineEvent | events.MachineStatus):
            raise events.ContractError("payload: refused for the test")
        return real(msg)

    monkeypatch.setattr(events, "encode", encode)
    runner.observe([JobStarted(file="a.gcode")])  # must not raise
    assert store.pending() == 0 and runner.ms.session_id is None and not runner.ms.job_open  # state unchanged
    assert "refused for the test" in caplog.text
    refuse["on"] = False
    runner.observe([JobStarted(file="a.gcode")])
    assert [e["type"] for e in _outbox(store)] == ["session_started", "job_started"]
    store.close()


def test_runner_telemetry_drops_non_finite_and_logs_each_name_once(tmp_path: Path, caplog) -> None:
    import logging

    runner, link, store = _runner(tmp_path)
    caplog.set_level(logging.INFO, logger="fablab_bridge.machine")
    for _ in range(3):
        runner.observe([Reading({"temps": {"hotend": {"actual": NAN, "target": 200.0}}, "power_w": INF})])
        readings = runner._clean_readings()
        runner._telemetry.clear()
        assert readings == {"temps": {"hotend": {"target": 200.0}}}
    assert caplog.text.count("temps.hotend.actual") == 1 and caplog.text.count("power_w") == 1
    store.close()


def test_badge_uid_too_long_is_denied_locally(tmp_path: Path) -> None:
    from devices.rfid import BadgeScan

    runner, link, store = _runner(tmp_path)
    assert runner.badge_scanned(BadgeScan(tech="wedge", uid="9" * 65)) is False
    assert not any(isinstance(m, events.AuthRequest) for m in link.sent)
    store.close()


# --- through the real bridge: a print server over MQTT, a real Mosquitto ----------------------------------


def test_bridge_cleans_a_print_servers_odd_reports(make_bridge, recorder, uid) -> None:
    m, base = uid("mk3"), uid("octoPrint")
    rec = recorder()
    make_bridge([{"id": m, "driver": "octoprint", "source": base}], bridge_id=uid("b"))
    rec.wait_state(m, "idle")

    def send(sub: str, data: dict) -> None:  # json.dumps writes NaN as OctoPrint's Python side may
        rec.client.publish(f"{base}/{sub}", json.dumps(data), qos=1).wait_for_publish(2)

    send("event/PrintStarted", {"_event": "PrintStarted", "name": LONG_FILE})
    send("temperature/tool0", {"actual": NAN, "target": 215.0})
    send("temperature/bed", {"actual": 60.0, "target": INF})
    send("progress/printing", {"progress": NAN})
    send("event/Error", {"_event": "Error", "error": "Heater failure " * 600})
    evs = rec.wait_events(m, ["session_started", "job_started", "error", "job_finished"], timeout=8)
    assert len(evs[1].detail["file"]) == 255 and evs[1].detail["file"].endswith("….gcode")
    assert len(json.dumps(evs[2].detail)) <= 4096
    wait_until(lambda: any("temps" in t.readings for t in rec.of(events.Telemetry, m)), what="telemetry")
    temps = [t.readings["temps"] for t in rec.of(events.Telemetry, m) if "temps" in t.readings]
    assert any(t.get("hotend") == {"target": 215.0} for t in temps)  # the NaN went, the rest stayed
    statuses = rec.of(events.MachineStatus, m)
    assert any(s.job and s.job.file and len(s.job.file) == 255 for s in statuses)
    # the bridge kept running: a later print is reported as usual
    send("event/Connected", {"_event": "Connected"})
    send("event/PrintStarted", {"_event": "PrintStarted", "name": "benchy.gcode"})
    rec.wait_state(m, "printing")
    # everything it published is strict JSON the contract decodes
    assert rec.invalid == []
    for topic, raw in rec.raw:
        if f"/machine/{m}/" in topic:
            strict_json(raw)
            events.decode(topic, raw)
    assert payloads(rec, "/telemetry")
