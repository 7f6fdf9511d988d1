"""Firmware behaviour the project's first simulators did not show (issue 21): other error wordings, a
controller that does not reset on open, no banner, a sender's own errors, a port that never returns."""

import time

import serial

from devices import events
from tests.bridge.conftest import wait_until


def test_marlin_recoverable_error_in_other_words_does_not_hide_later_prints(marlin_sim, make_bridge, recorder,
                                                                            uid):
    m = uid("prusa")
    rec = recorder()
    sim = marlin_sim(resend_rate=0.3, checksum_error=" Missing checksum", seed=5)
    make_bridge([{"id": m, "driver": "marlin", "port": sim.path}], bridge_id=uid("b"))
    rec.wait_state(m, "idle")
    wait_until(lambda: sim.resends_requested >= 3, what="a few 'Error: Missing checksum' + Resend")
    assert "error" not in rec.states(m)
    sim.start_print("benchy.gcode")
    evs = rec.wait_events(m, ["session_started", "job_started", "job_finished"], timeout=8)
    assert evs[2].reason == "done" and "error" not in rec.event_types(m)


def test_marlin_halt_in_other_words_is_an_error(marlin_sim, make_bridge, recorder, uid):
    m = uid("prusa")
    rec = recorder()
    sim = marlin_sim(print_rate=200.0)
    make_bridge([{"id": m, "driver": "marlin", "port": sim.path}], bridge_id=uid("b"))
    rec.wait_state(m, "idle")
    sim.start_print()
    rec.wait_state(m, "printing")
    sim.inject_error("MAXTEMP triggered, Heater_ID: 0", halt="!! kill")
    evs = rec.wait_events(m, ["session_started", "job_started", "error", "job_finished"])
    assert evs[2].detail == {"message": "MAXTEMP triggered, Heater_ID: 0"} and evs[3].reason == "error"
    rec.wait_state(m, "error")


def test_marlin_after_resend_waits_for_the_resent_lines_ok(marlin_sim, make_bridge, recorder, uid):
    m = uid("prusa")
    rec = recorder()
    sim = marlin_sim(resend_rate=0.4, ack_delay=0.08, seed=11)
    make_bridge([{"id": m, "driver": "marlin", "port": sim.path, "poll_interval": 0.1}], bridge_id=uid("b"))
    rec.wait_state(m, "idle")
    wait_until(lambda: sim.resends_requested >= 8, timeout=8, what="resends")
    assert sim.overruns == 0  # never a new line while the re-sent one was still being worked on


def test_grbl_without_reset_on_open_gets_its_state_and_firmware(grbl_sim, make_bridge, recorder, uid):
    m = uid("cnc")
    rec = recorder()
    sim = grbl_sim(reset_on_open=False)
    make_bridge([{"id": m, "driver": "grbl", "port": sim.path}], bridge_id=uid("b"))
    rec.wait_state(m, "idle")
    status = wait_until(lambda: [s for s in rec.of(events.MachineStatus, m) if s.fw], what="fw from $I")[-1]
    assert status.fw.name == "Grbl 1.1h.20190825" and status.fw.caps["VARIABLE_SPINDLE"] is True
    assert "$I" in sim.received
    sim.unplug()
    rec.wait_state(m, "offline")
    time.sleep(0.3)
    sim.replug()  # no reset, no banner: the state must still be republished
    rec.wait_state(m, "idle", timeout=3)
    states = rec.states(m)
    assert states.index("offline") < len(states) - 1  # not a retained offline while telemetry says Idle


def test_grbl_reconnect_mid_job_is_reconciled(grbl_sim, make_bridge, recorder, uid):
    m = uid("cnc")
    rec = recorder()
    sim = grbl_sim(reset_on_open=False, move_time=0.1)
    make_bridge([{"id": m, "driver": "grbl", "port": sim.path}], bridge_id=uid("b"))
    rec.wait_state(m, "idle")
    sim.run_job(moves=30)
    rec.wait_events(m, ["session_started", "job_started"])
    sim.unplug()
    evs = rec.wait_events(m, ["session_started", "job_started", "job_finished", "session_ended"], timeout=2)
    assert evs[2].reason == "lost" and evs[3].reason == "lost"
    sim.replug()  # still running its queue
    evs = rec.wait_events(m, ["session_started", "job_started", "job_finished", "session_ended",
                              "session_started", "job_started", "job_finished"], timeout=8)
    assert evs[5].detail == {"resumed": True} and evs[6].reason == "done"


def test_port_that_never_returns_ends_job_and_session_at_once(marlin_sim, make_bridge, recorder, uid):
    m = uid("prusa")
    rec = recorder()
    sim = marlin_sim(print_rate=100.0)
    make_bridge([{"id": m, "driver": "marlin", "port": sim.path}], bridge_id=uid("b"))
    rec.wait_state(m, "idle")
    sim.start_print()
    rec.wait_state(m, "printing")
    lost_at = time.time()
    sim.unplug()
    evs = rec.wait_events(m, ["session_started", "job_started", "job_finished", "session_ended"], timeout=2)
    ended = events.parse_ts(evs[3].ts).timestamp()
    assert evs[2].reason == "lost" and ended - lost_at < 1.0
    rec.wait_state(m, "offline")


def read_lines(port, seconds):
    from devices.lines import LineBuffer

    buf, lines = LineBuffer(), []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        lines += buf.feed(port.read(4096))
    return lines


def test_grbl_sender_errors_are_job_detail_not_machine_errors(grbl_sim, make_bridge, recorder, uid, tmp_path):
    m = uid("cnc")
    rec = recorder()
    sim = grbl_sim()
    link = str(tmp_path / "ttyCNC")
    make_bridge([{"id": m, "driver": "grbl", "port": sim.path, "passthrough": link}], bridge_id=uid("b"))
    rec.wait_state(m, "idle")
    with serial.Serial(link, 115200, timeout=0.05) as sender:
        sender.write(b"G1 X5 F500\n" + b"".join(b"G1 X%d Y%d\n" % (i % 7, i % 5) for i in range(10)))
        rec.wait_state(m, "busy")
        sender.write(b"G1 X\n")  # error:1 (letter without a value), the sender's reply
        sender.write(b"M2\n")
        lines = read_lines(sender, 2.0)
        assert "error:1" in lines and "[MSG:Pgm End]" in lines
    evs = rec.wait_events(m, ["session_started", "job_started", "job_finished"])
    assert "error" not in rec.event_types(m)
    assert evs[2].detail == {"sender_errors": 1, "last_sender_error": "error:1"}
    # no status said busy without the job after Pgm End
    statuses = rec.of(events.MachineStatus, m)
    assert not [s for s in statuses if s.state == "busy" and s.job is None]
