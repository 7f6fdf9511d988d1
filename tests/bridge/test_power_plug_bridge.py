"""A machine without a data port, watched and locked through a Tasmota plug on the same broker."""

import json
import time

from devices import events
from tests.bridge.conftest import wait_until


def test_power_use_becomes_a_job_with_energy(make_bridge, recorder, uid, broker):
    m, plug = uid("laser"), uid("tasmota_laser")
    rec = recorder()
    rec.client.subscribe(f"cmnd/{plug}/#", qos=1)
    make_bridge([{
        "id": m, "driver": "power_plug", "lock": "plug", "start_locked": True,
        "plug": {"kind": "tasmota", "device": plug, "threshold_w": 50, "min_on_s": 0.2, "min_off_s": 0.3},
    }], bridge_id=uid("b"))
    rec.wait_state(m, "locked")

    def sensor(power):
        payload = json.dumps({"Time": "2026-03-01T10:00:00", "ENERGY": {"Power": power, "Total": 1.5}})
        rec.client.publish(f"tele/{plug}/SENSOR", payload, qos=1)

    rec.publish(events.Command(src="server", machine=m, action="unlock"))
    wait_until(lambda: (f"cmnd/{plug}/POWER", b"ON") in rec.raw, what="relay switched on")
    for power in [0, 400, 10, 400] + [400] * 8 + [0] * 10:
        sensor(power)
        time.sleep(0.05)
    evs = rec.wait_events(m, ["session_started", "job_started", "job_finished"])
    assert 0.01 < evs[2].energy_wh < 0.1  # ~400 W for ~0.45 s
    rec.publish(events.Command(src="server", machine=m, action="lock"))
    wait_until(lambda: (f"cmnd/{plug}/POWER", b"OFF") in rec.raw, what="relay switched off")
    evs = rec.wait_events(m, ["session_started", "job_started", "job_finished", "session_ended"])
    assert evs[3].reason == "locked"


def test_octoprint_print_server_is_adapted(make_bridge, recorder, uid):
    m, base = uid("mk3"), uid("octoPrint")
    rec = recorder()
    make_bridge([{"id": m, "driver": "octoprint", "source": base}], bridge_id=uid("b"))
    rec.wait_state(m, "idle")

    def octo(event, **data):
        rec.client.publish(f"{base}/event/{event}", json.dumps({"_event": event} | data), qos=1).wait_for_publish(2)

    octo("PrintStarted", name="benchy.gcode")
    rec.client.publish(f"{base}/progress/printing", json.dumps({"progress": 50}), qos=1)
    rec.wait_state(m, "printing")
    octo("PrintDone", name="benchy.gcode")
    evs = rec.wait_events(m, ["session_started", "job_started", "job_finished"])
    assert evs[1].detail == {"file": "benchy.gcode"} and evs[2].reason == "done"
    rec.wait_state(m, "idle")
