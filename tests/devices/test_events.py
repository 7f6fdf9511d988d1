import json
import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices import events as ev


def roundtrip(msg: ev.Message) -> ev.Message:
    return ev.decode(msg.topic(), ev.encode(msg))


def test_every_message_type_round_trips():
    sid = ev.new_msg_id()
    msgs = [
        ev.BridgeStatus(src="b1", bridge_id="b1", online=True),
        ev.MachineStatus(
            src="b1",
            machine="prusa-1",
            state="printing",
            job=ev.JobInfo(file="benchy.gcode", progress=0.25),
            fw=ev.FirmwareInfo(name="Marlin 2.1.2", caps={"EEPROM": True}),
        ),
        ev.MachineEvent(
            src="b1",
            machine="prusa-1",
            type="session_started",
            session_id=sid,
            seq=7,
            badge=ev.Badge(tech="em4100", uid="0A1B2C3D4E"),
        ),
        ev.MachineEvent(src="b1", machine="prusa-1", type="job_finished", session_id=sid, seq=8, energy_wh=12.5,
                        reason="done", detail={"file": "a.gcode"}),
        ev.MachineEvent(src="b1", machine="prusa-1", type="error", session_id=None, seq=9, reason="alarm:1"),
        ev.Telemetry(src="b1", machine="prusa-1", readings={"temps": {"hotend": {"actual": 20.5}}, "power_w": 3}),
        ev.AuthRequest(src="b1", machine="prusa-1", badge=ev.Badge(tech="wedge", uid="1234")),
        ev.AuthResponse(src="server", machine="prusa-1", request_id=sid, decision="allow", reason="booking",
                        booking_id=42, valid_until="2026-01-01T10:00:00+01:00"),
        ev.Command(src="server", machine="prusa-1", action="lock"),
    ]
    for msg in msgs:
        assert roundtrip(msg) == msg


def test_payload_has_envelope_and_topic_fields_are_not_serialized():
    msg = ev.Command(src="server", machine="laser", action="unlock")
    payload = json.loads(ev.encode(msg))
    assert payload == {"v": 1, "msg_id": msg.msg_id, "ts": msg.ts, "src": "server", "action": "unlock"}
    assert msg.topic() == "fablab/v1/machine/laser/cmd"
    assert ev.MachineStatus.RETAIN and ev.Telemetry.QOS == 0 and ev.MachineEvent.QOS == 1


def test_topics():
    assert ev.parse_topic("fablab/v1/machine/prusa-1/event") == ("machine", "prusa-1", "event")
    assert ev.parse_topic("fablab/v1/machine/m/auth/request") == ("machine", "m", "auth/request")
    assert ev.parse_topic("fablab/v1/bridge/b-1/status") == ("bridge", "b-1", "status")
    assert ev.bridge_topic("b") == "fablab/v1/bridge/b/status"
    for bad in ("fablab/v2/machine/m/event", "fablab/v1/machine/m/nope", "fablab/v1/machine/m",
                "fablab/v1/machine/+/event", "fablab/v1/bridge/b/event", "other/m/event"):
        with pytest.raises(ev.ContractError):
            ev.parse_topic(bad)
    with pytest.raises(ev.ContractError):
        ev.machine_topic("a/b", "event")


def good_event() -> dict:
    return {"v": 1, "msg_id": "01HX", "ts": "2026-03-01T10:00:00Z", "src": "b1", "type": "job_started",
            "session_id": "s1", "seq": 3}


TOPIC = "fablab/v1/machine/m1/event"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"v": 2}, "v: unsupported version 2"),
        ({"v": True}, "v: wrong type bool"),
        ({"v": None}, "v: missing"),
        ({"msg_id": ""}, "msg_id"),
        ({"msg_id": 5}, "msg_id: wrong type int"),
        ({"ts": "yesterday"}, "ts: not ISO 8601"),
        ({"ts": "2026-03-01T10:00:00"}, "ts: missing UTC offset"),
        ({"src": ""}, "src"),
        ({"type": "exploded"}, "type: unknown 'exploded'"),
        ({"seq": "3"}, "seq: wrong type str"),
        ({"seq": -1}, "seq: negative"),
        ({"session_id": None}, "session_id: missing"),
        ({"badge": {"tech": "em4100"}}, "uid: missing"),
        ({"energy_wh": "lots"}, "energy_wh: wrong type str"),
        ({"detail": "text"}, "detail: wrong type str"),
    ],
)
def test_invalid_event_fields_give_a_reason(change, reason):
    payload = good_event() | change
    with pytest.raises(ev.ContractError) as exc:
        ev.decode(TOPIC, json.dumps(payload))
    assert reason in exc.value.reason


def test_error_event_may_be_outside_a_session():
    msg = ev.decode(TOPIC, json.dumps(good_event() | {"type": "error", "session_id": None}))
    assert isinstance(msg, ev.MachineEvent) and msg.session_id is None


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        (TOPIC, b"{not json", "invalid JSON"),
        (TOPIC, b"\xff\xfe", "invalid JSON"),
        (TOPIC, b"[1, 2]", "not a JSON object"),
        ("fablab/v1/machine/m1/status", {"state": "melting"}, "state: unknown"),
        ("fablab/v1/machine/m1/status", {"state": "idle", "job": {"progress": 1.5}}, "outside 0..1"),
        ("fablab/v1/machine/m1/status", {"state": "idle", "fw": {"name": "x", "caps": {"A": 1}}}, "fw.caps"),
        ("fablab/v1/machine/m1/cmd", {"action": "self_destruct"}, "action: unknown"),
        ("fablab/v1/machine/m1/auth/response", {"request_id": "r", "decision": "maybe"}, "decision: unknown"),
        ("fablab/v1/machine/m1/auth/response", {"decision": "allow"}, "request_id: missing"),
        ("fablab/v1/machine/m1/auth/request", {}, "badge: missing"),
        ("fablab/v1/bridge/b1/status", {"online": "yes"}, "online: wrong type str"),
    ],
)
def test_invalid_payloads(topic, payload, reason):
    if isinstance(payload, dict):
        payload = json.dumps({"v": 1, "msg_id": "x", "ts": "2026-03-01T10:00:00+00:00", "src": "s"} | payload)
    with pytest.raises(ev.ContractError) as exc:
        ev.decode(topic, payload)
    assert reason in exc.value.reason


def test_encode_validates_too():
    with pytest.raises(ev.ContractError):
        ev.encode(ev.MachineStatus(src="b", machine="m", state="on fire"))
    with pytest.raises(ev.ContractError):
        ev.encode(ev.Telemetry(src="b", machine="m", readings={"v": 2}))


def test_msg_ids_are_ulids_sorted_by_time():
    ids = [ev.new_msg_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", i) for i in ids)
    early = ev.new_msg_id(now_ms=1_000)
    assert ev.ulid_time(early) == datetime.fromtimestamp(1, UTC)
    stamp = ev.ulid_time(ids[0])
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 60


def test_ts_is_utc_iso():
    ts = ev.utc_now_iso(datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=UTC))
    assert ts == "2026-03-01T10:00:00.123Z"
    assert ev.parse_ts(ts) == datetime(2026, 3, 1, 10, 0, 0, 123000, tzinfo=UTC)


@given(st.dictionaries(st.text(max_size=8), st.one_of(st.none(), st.integers(), st.text(max_size=5), st.booleans())))
def test_decode_never_raises_anything_but_contract_error(extra):
    for sub in ev.MACHINE_SUBTOPICS:
        try:
            ev.decode(f"fablab/v1/machine/m/{sub}", json.dumps(good_event() | extra))
        except ev.ContractError:
            pass
