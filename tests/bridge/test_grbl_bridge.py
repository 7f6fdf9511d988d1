"""The bridge against the GRBL simulator, with and without a G-code sender on the pass-through pty."""

import time

import serial

from devices import events
from devices.lines import LineBuffer
from tests.bridge.conftest import wait_until


def read_lines(port, seconds):
    buf, lines = LineBuffer(), []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        lines += buf.feed(port.read(4096))
    return lines


def test_sender_on_passthrough_sees_only_its_own_traffic(grbl_sim, make_bridge, recorder, uid, tmp_path):
    m = uid("cnc")
    rec = recorder()
    sim = grbl_sim()
    link = str(tmp_path / "ttyFABLAB-cnc")
    make_bridge([{"id": m, "driver": "grbl", "port": sim.path, "passthrough": link}], bridge_id=uid("b"))
    rec.wait_state(m, "idle")
    with serial.Serial(link, 115200, timeout=0.05) as sender:
        before = sim.status_queries
        assert not [x for x in read_lines(sender, 0.8) if x.startswith("<")]  # bridge polls, sender sees none
        assert sim.status_queries - before >= 3
        sender.write(b"$I\n")
        lines = read_lines(sender, 0.4)
        assert "[VER:1.1h.20190825:]" in lines and "ok" in lines
        sender.write(b"?")
        status = [x for x in read_lines(sender, 0.6) if x.startswith("<")]
        assert len(status) == 1 and status[0].startswith("<Idle|MPos:")
        sender.write(b"G1 X5 F500\nG1 Y5\nG1 X0 Y0\nG1 X2\nM2\n")
        lines = read_lines(sender, 1.0)
        assert lines.count("ok") == 5 and "[MSG:Pgm End]" in lines
        assert not [x for x in lines if x.startswith("<")]
    evs = rec.wait_events(m, ["session_started", "job_started", "job_finished"])
    assert evs[2].reason == "done"
    assert "busy" in rec.states(m)
    assert any(line.startswith("G1 X5") for line in sim.received)  # forwarded unchanged


def test_grbl_job_alarm_and_telemetry(grbl_sim, make_bridge, recorder, uid):
    m = uid("cnc")
    rec = recorder()
    sim = grbl_sim()
    make_bridge([{"id": m, "driver": "grbl", "port": sim.path}], bridge_id=uid("b"))
    rec.wait_state(m, "idle")
    sim.run_job(moves=6)
    rec.wait_events(m, ["session_started", "job_started", "job_finished"])
    rec.wait_state(m, "idle")
    sim.run_job(moves=50, end=False)
    rec.wait_state(m, "busy")
    sim.hold()
    rec.wait_state(m, "paused")
    sim.inject_alarm(1)
    rec.wait_state(m, "alarm")
    evs = rec.wait_events(m, ["session_started", "job_started", "job_finished", "job_started", "error",
                              "job_finished"])
    assert evs[4].reason == "alarm:1" and evs[4].detail == {"message": "hard limit"}
    assert evs[5].reason == "alarm"
    assert len({e.session_id for e in evs}) == 1  # one session: no idle timeout in between
    tele = wait_until(lambda: [t for t in rec.of(events.Telemetry, m) if "mpos" in t.readings], what="telemetry")
    assert len(tele[-1].readings["mpos"]) == 3
