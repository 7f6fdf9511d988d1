"""Streamed queued prints through the bridge over a pty: GRBL with character counting against a simulator
that keeps GRBL 1.1's 128-byte RX buffer (an overflow would lose bytes), and Marlin with line numbers and
checksums against a checksum-strict simulator that asks for resends."""

from __future__ import annotations

from devices import events
from tests.bridge.conftest import wait_until
from tests.bridge.test_print_jobs_marlin import files, offer, wait_result  # noqa: F401 - fixture

__all__ = ["files"]


def program(moves: int, bad_at: int | None = None) -> bytes:
    lines = ["(a test program)", "G21 G90", "G0 Z5", "M3 S1000"]
    for i in range(moves):
        lines.append("G1 X" if i == bad_at else f"G1 X{i % 40}.{i % 10} Y{(i * 3) % 30}.25 F1200 ; cut {i}")
    lines += ["M5", "M2"]
    return ("\n".join(lines) + "\n").encode()


def grbl_bridge(make_bridge, sim, m, uid, tmp_path):
    return make_bridge([{"id": m, "driver": "grbl", "port": sim.path, "transfer": "stream"}],
                       bridge_id=uid("b"), state_dir=tmp_path / "state")


def test_grbl_stream_counts_characters_and_finishes(grbl_sim, make_bridge, recorder, uid, files, tmp_path):  # noqa: F811
    m = uid("cnc")
    rec = recorder()
    sim = grbl_sim(rx_buffer=128, move_time=0.004)
    grbl_bridge(make_bridge, sim, m, uid, tmp_path)
    rec.wait_state(m, "idle")
    data = program(400)
    job = uid("job")
    rec.publish(offer(m, files.add("plate.nc", data), data, job_id=job, transfer="stream", name="plate.nc"))
    wait_result(rec, m, job, "ready")
    assert not [line for line in sim.received if line.startswith("G1")]  # nothing sent before JobStart
    rec.publish(events.JobStart(src="server", machine=m, job_id=job, by="badge"))
    wait_result(rec, m, job, "started")
    evs = rec.wait_events(m, ["session_started", "job_started", "job_finished"], timeout=30)
    assert evs[1].detail["job_id"] == job and evs[2].detail["job_id"] == job and evs[2].reason == "done"
    sent = [line for line in sim.received if line.startswith("G1")]
    assert sent == [f"G1X{i % 40}.{i % 10}Y{(i * 3) % 30}.25F1200" for i in range(400)]  # all, in order
    assert sim.rx_overflows == 0 and sim.rx_peak <= 128
    assert sim.rx_peak > 60  # several lines in flight: character counting, not one line at a time
    progress = [p.done for p in rec.of(events.JobProgress, m) if p.phase == "print"]
    assert progress and progress == sorted(progress) and progress[-1] == len(data)


def test_grbl_error_stops_the_job_with_the_reason(grbl_sim, make_bridge, recorder, uid, files, tmp_path):  # noqa: F811
    m = uid("cnc")
    rec = recorder()
    sim = grbl_sim(rx_buffer=128, move_time=0.02)
    grbl_bridge(make_bridge, sim, m, uid, tmp_path)
    rec.wait_state(m, "idle")
    data = program(300, bad_at=120)
    job = uid("job")
    rec.publish(offer(m, files.add("bad.nc", data), data, job_id=job, transfer="stream", name="bad.nc"))
    wait_result(rec, m, job, "ready")
    rec.publish(events.JobStart(src="server", machine=m, job_id=job, by="badge"))
    failed = wait_result(rec, m, job, "failed", timeout=20)
    assert "error:1" in failed.reason and "line 124 (G1 X)" in failed.reason, failed.reason
    evs = rec.wait_events(m, ["session_started", "job_started", "job_finished"], timeout=10)
    assert evs[2].reason == "error" and evs[2].detail["job_id"] == job
    assert evs[2].detail["last_sender_error"] == "error:1"
    sent = [line for line in sim.received if line.startswith("G1")]
    assert len(sent) < 140  # stopped: only what was in the buffer when the error came
    assert "error" not in [e.type for e in rec.events(m)]  # a refused line is the job's, not a machine fault
    wait_until(lambda: not sim.queue, what="the controller's queue flushed by the reset")


def test_marlin_stream_numbers_checksums_and_resends(marlin_sim, make_bridge, recorder, uid, files, tmp_path):  # noqa: F811
    m = uid("prusa")
    rec = recorder()
    sim = marlin_sim(checksum_strict=True, resend_rate=0.03, seed=11)
    make_bridge([{"id": m, "driver": "marlin", "port": sim.path, "transfer": "stream"}], bridge_id=uid("b"),
                state_dir=tmp_path / "state")
    rec.wait_state(m, "idle")
    lines = [f"G1 X{i % 50} Y{i % 30} E{i * 0.02:.2f} F1500" for i in range(500)]
    data = ("; sliced\nM104 S200\n" + "\n".join(lines) + "\nM104 S0\n").encode()
    job = uid("job")
    rec.publish(offer(m, files.add("part.gcode", data), data, job_id=job, transfer="stream", name="part.gcode"))
    wait_result(rec, m, job, "ready")
    rec.publish(events.JobStart(src="server", machine=m, job_id=job, by="kiosk"))
    evs = rec.wait_events(m, ["session_started", "job_started", "job_finished"], timeout=30)
    assert evs[1].detail == {"file": "part.gcode", "job_id": job}
    assert evs[2].reason == "done" and evs[2].detail["job_id"] == job
    ran = [c for _, c in sim.commands if c.startswith("G1")]
    assert ran == lines  # every line once, in order, despite the resends
    assert sim.resends_requested > 0
    assert "M105" in [c for _, c in sim.commands]  # temperatures still asked between the file's lines
    results = [r.result for r in rec.of(events.JobResult, m) if r.job_id == job]
    assert results[:2] == ["ready", "started"] and "failed" not in results


def test_grbl_alarm_mid_stream_fails_the_job(grbl_sim, make_bridge, recorder, uid, files, tmp_path):  # noqa: F811
    m = uid("cnc")
    rec = recorder()
    sim = grbl_sim(rx_buffer=128, move_time=0.03)
    grbl_bridge(make_bridge, sim, m, uid, tmp_path)
    rec.wait_state(m, "idle")
    data = program(300)
    job = uid("job")
    rec.publish(offer(m, files.add("long.nc", data), data, job_id=job, transfer="stream", name="long.nc"))
    wait_result(rec, m, job, "ready")
    rec.publish(events.JobStart(src="server", machine=m, job_id=job, by="badge"))
    rec.wait_events(m, ["session_started", "job_started"], timeout=10)
    sim.inject_alarm(1)  # hard limit
    failed = wait_result(rec, m, job, "failed", timeout=10)
    assert "ALARM:1" in failed.reason
    evs = rec.wait_events(m, ["session_started", "job_started", "error", "job_finished"], timeout=10)
    assert evs[2].reason == "alarm:1" and evs[3].reason == "alarm" and evs[3].detail["job_id"] == job
    assert len([line for line in sim.received if line.startswith("G1")]) < 300
