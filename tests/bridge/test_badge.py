"""Badge scans on an RDM6300 reader (over a real pty) authorized by a test-side responder."""

import time

import paho.mqtt.client as mqtt
import pytest

from devices import events
from devices.passthrough import PtyPort
from devices.rfid import rdm6300_frame
from tests.bridge.conftest import wait_until

ALLOWED, DENIED, IGNORED = "0A1B2C3D4E", "00DEADBEEF", "0011223344"


@pytest.fixture
def responder(broker):
    """Answers auth requests like the server: allow ALLOWED, deny DENIED, stay silent for others."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    seen: list[events.AuthRequest] = []

    def on_message(c, u, message):
        req = events.decode(message.topic, message.payload)
        seen.append(req)
        if req.badge.uid in (ALLOWED, DENIED):
            decision = "allow" if req.badge.uid == ALLOWED else "deny"
            resp = events.AuthResponse(src="server", machine=req.machine, request_id=req.msg_id, decision=decision,
                                       reason="booking" if decision == "allow" else "not_qualified", booking_id=7)
            c.publish(resp.topic(), events.encode(resp), qos=1)

    client.on_message = on_message
    client.connect(broker.host, broker.port)
    client.subscribe("fablab/v1/machine/+/auth/request", qos=1)
    client.loop_start()
    yield seen
    client.disconnect()
    client.loop_stop()


def test_badge_denied_then_allowed_then_checkout(marlin_sim, make_bridge, recorder, responder, uid, tmp_path):
    m = uid("prusa")
    rec = recorder()
    sim = marlin_sim()
    reader = PtyPort(str(tmp_path / "rdm6300"))
    reader.open()
    make_bridge([{
        "id": m, "driver": "marlin", "port": sim.path, "lock": "firmware", "start_locked": True,
        "auth_timeout": 0.5, "badge": {"reader": "rdm6300", "port": reader.path, "debounce_s": 0.2},
    }], bridge_id=uid("b"))
    try:
        rec.wait_state(m, "locked")
        wait_until(reader.connected, what="bridge to open the badge reader")

        reader.write(rdm6300_frame(DENIED) * 3)  # held card: one request
        wait_until(lambda: len(rec.of(events.AuthResponse, m)) == 1, what="deny response")
        reader.write(rdm6300_frame(IGNORED))  # no answer: times out, stays locked
        wait_until(lambda: len(responder) == 2, what="second request")
        assert [r.badge.uid for r in responder] == [DENIED, IGNORED]
        assert responder[0].badge.tech == "em4100"
        wait_until(lambda: len(rec.of(events.AuthRequest, m)) == 2, timeout=2)
        time.sleep(0.7)  # past auth_timeout
        assert rec.last_state(m) == "locked" and rec.events(m) == []

        reader.write(rdm6300_frame(ALLOWED))
        rec.wait_state(m, "idle")
        (started,) = rec.wait_events(m, ["session_started"])
        assert started.badge == events.Badge(tech="em4100", uid=ALLOWED)
        wait_until(lambda: sim.display == "Ready", what="printer unlocked")

        time.sleep(0.3)  # past the debounce: the same card again checks out
        reader.write(rdm6300_frame(ALLOWED))
        rec.wait_state(m, "locked")
        evs = rec.wait_events(m, ["session_started", "session_ended"])
        assert evs[1].reason == "checkout" and evs[1].session_id == started.session_id
        wait_until(lambda: sim.display == "Locked - scan badge", what="printer locked again")
    finally:
        reader.close()
