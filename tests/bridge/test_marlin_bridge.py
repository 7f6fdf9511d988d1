"""The bridge against the Marlin simulator over a real pty and a real Mosquitto."""

from devices import events
from tests.bridge.conftest import wait_until


def test_print_from_screen_becomes_session_and_job_events(marlin_sim, make_bridge, recorder, uid):
    m = uid("prusa")
    rec = recorder()
    sim = marlin_sim(resend_rate=0.15, seed=3)
    make_bridge([{"id": m, "driver": "marlin", "port": sim.path}], bridge_id=uid("b"))
    rec.wait_state(m, "idle")
    status = wait_until(lambda: [s for s in rec.of(events.MachineStatus, m) if s.fw], what="firmware info")[-1]
    assert status.fw.name == "Marlin 2.1.2.1" and status.fw.caps["AUTOREPORT_TEMP"] is True
    sim.start_print("benchy.gcode")
    rec.wait_state(m, "printing")
    evs = rec.wait_events(m, ["session_started", "job_started", "job_finished"], timeout=8)
    assert [e.seq for e in evs] == sorted(e.seq for e in evs) and len({e.seq for e in evs}) == 3
    assert len({e.session_id for e in evs}) == 1 and evs[0].session_id
    assert evs[2].reason == "done"
    rec.wait_state(m, "idle")
    telemetry = rec.of(events.Telemetry, m)
    hot = [t.readings["temps"]["hotend"]["actual"] for t in telemetry if "temps" in t.readings]
    assert max(hot) > 150  # heated up for the print
    progress = [s.job.progress for s in rec.of(events.MachineStatus, m) if s.job and s.job.progress]
    assert progress and progress == sorted(progress)
    assert sim.resends_requested > 0  # random resends were answered, the bridge kept working
    assert all(line.startswith("N") for line in sim.received if line)  # every bridge line is numbered


def test_firmware_error_and_reboot(marlin_sim, make_bridge, recorder, uid):
    m = uid("prusa")
    rec = recorder()
    sim = marlin_sim(print_rate=200.0)
    make_bridge([{"id": m, "driver": "marlin", "port": sim.path}], bridge_id=uid("b"))
    rec.wait_state(m, "idle")
    sim.start_print()
    rec.wait_state(m, "printing")
    sim.inject_error()
    rec.wait_state(m, "error")
    evs = rec.wait_events(m, ["session_started", "job_started", "error", "job_finished"])
    assert evs[2].reason == "firmware_error" and "Thermal Runaway" in evs[2].detail["message"]
    assert evs[3].reason == "error"
    sim.reboot()
    rec.wait_state(m, "idle")


def test_serial_port_vanishes_and_returns_mid_print(marlin_sim, make_bridge, recorder, uid):
    m = uid("prusa")
    rec = recorder()
    sim = marlin_sim(print_rate=1500.0, files={"part.gcode": 6000}, reset_on_open=False)
    make_bridge([{"id": m, "driver": "marlin", "port": sim.path}], bridge_id=uid("b"))
    rec.wait_state(m, "idle")
    sim.start_print()
    rec.wait_state(m, "printing")
    sim.unplug()
    # ended at the time of loss, at once: not when (or if) the port comes back
    evs = rec.wait_events(m, ["session_started", "job_started", "job_finished", "session_ended"], timeout=2)
    assert evs[2].reason == "lost" and evs[3].reason == "lost"
    rec.wait_state(m, "offline")
    sim.replug()  # a native-USB board printed on from SD meanwhile: a resumed job in a new session
    rec.wait_state(m, "printing", timeout=5)
    evs = rec.wait_events(m, ["session_started", "job_started", "job_finished", "session_ended",
                              "session_started", "job_started", "job_finished"], timeout=8)
    assert evs[5].detail == {"resumed": True} and evs[6].reason == "done"
    assert evs[4].session_id != evs[0].session_id and evs[6].session_id == evs[4].session_id
    assert [e.seq for e in evs] == sorted(e.seq for e in evs)


def test_lock_and_unlock_commands(marlin_sim, make_bridge, recorder, uid):
    m = uid("prusa")
    rec = recorder()
    sim = marlin_sim()
    make_bridge([{"id": m, "driver": "marlin", "port": sim.path, "lock": "firmware"}], bridge_id=uid("b"))
    rec.wait_state(m, "idle")
    rec.publish(events.Command(src="server", machine=m, action="lock"))
    rec.wait_state(m, "locked")
    wait_until(lambda: sim.display == "Locked - scan badge", what="M117 on the printer's display")
    rec.publish(events.Command(src="server", machine=m, action="unlock"))
    rec.wait_state(m, "idle")
    wait_until(lambda: sim.display == "Ready", what="M117 Ready")
    rec.publish(events.Command(src="server", machine=m, action="power_off"))
    wait_until(lambda: not sim.psu_on, what="M81")
    # a malformed command is ignored, the bridge keeps running
    rec.client.publish(events.machine_topic(m, "cmd"), b'{"action": "explode"}', qos=1).wait_for_publish(2)
    rec.publish(events.Command(src="server", machine=m, action="lock"))
    rec.wait_state(m, "locked")


def test_board_reset_on_reconnect_loses_the_job(marlin_sim, make_bridge, recorder, uid):
    m = uid("prusa")
    rec = recorder()
    sim = marlin_sim(print_rate=100.0)
    make_bridge([{"id": m, "driver": "marlin", "port": sim.path}], bridge_id=uid("b"))
    rec.wait_state(m, "idle")
    sim.start_print()
    rec.wait_state(m, "printing")
    sim.unplug()
    rec.wait_state(m, "offline")
    sim.replug()  # an 8-bit board reboots when the port opens: the print is gone
    evs = rec.wait_events(m, ["session_started", "job_started", "job_finished"], timeout=8)
    assert evs[2].reason == "lost"
    rec.wait_state(m, "idle")
