"""A G-code sender shares a Marlin printer with the bridge through a pty (issue 21, Marlin pass-through)."""

import time

import serial

from devices import events
from devices.lines import LineBuffer
from devices.marlin import MarlinLineEncoder
from tests.bridge.conftest import wait_until


class Sender:
    """A host like OctoPrint or Pronterface: numbered, checksummed lines, one at a time, each waiting its ok."""

    def __init__(self, path: str) -> None:
        self.port = serial.Serial(path, 250000, timeout=0)
        self.enc = MarlinLineEncoder(history=100)
        self.buf = LineBuffer()
        self.seen: list[str] = []  # every line the sender received

    def _read_until_ok(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.buf.feed(self.port.read(4096)):
                self.seen.append(line)
                if line.startswith("Resend"):
                    raise AssertionError(f"the sender was asked to resend: {self.seen[-5:]}")
                if line.startswith("ok"):
                    return
            time.sleep(0.0002)
        raise AssertionError(f"no ok within {timeout}s; last lines {self.seen[-5:]}")

    def send(self, cmd: str) -> None:
        self.port.write(self.enc.encode(cmd).encode())
        self._read_until_ok()

    def reset(self) -> None:
        self.port.write(self.enc.reset().encode())
        self._read_until_ok()


def start(make_bridge, marlin_sim, uid, tmp_path, **sim_kw):
    m = uid("prusa")
    sim = marlin_sim(checksum_strict=True, **sim_kw)
    link = str(tmp_path / "ttyPRUSA")
    make_bridge([{"id": m, "driver": "marlin", "port": sim.path, "passthrough": link, "poll_interval": 0.2,
                  "stream_idle_s": 1.0}], bridge_id=uid("b"))
    return m, sim, link


def moves(n):
    return [f"G1 X{i % 200} Y{(i * 7) % 200} F3000" for i in range(n)]


def test_sender_streams_10000_lines_in_order_with_every_ok(make_bridge, marlin_sim, recorder, uid, tmp_path):
    rec = recorder()
    m, sim, link = start(make_bridge, marlin_sim, uid, tmp_path, resend_rate=0.01, seed=2)
    rec.wait_state(m, "idle")
    sender = Sender(link)
    sender.reset()  # the sender's own M110: its numbering, answered by the bridge
    program = moves(10_000)
    for cmd in program:
        sender.send(cmd)
    oks = [x for x in sender.seen if x.startswith("ok")]
    assert len(oks) == 10_001
    # the printer got every sender line once, in order, among the bridge's own queries
    got = [cmd for _, cmd in sim.commands if cmd.startswith("G1")]
    assert got == program
    numbers = [n for n, _ in sim.commands]
    assert all(n is not None for n in numbers)  # checksum-strict: every line numbered and valid
    polls = [cmd for _, cmd in sim.commands if cmd in ("M105", "M27")]
    assert len(polls) >= 4  # the bridge kept polling between the sender's acknowledged lines
    assert sim.resends_requested > 0  # the printer asked for resends; the bridge answered them itself
    # the bridge's replies are not the sender's
    assert not [x for x in sender.seen if x.startswith(("ok T:", "SD printing", "Not SD", "FIRMWARE", "Cap:",
                                                          "Error", "Resend"))]
    assert sim.overruns == 0
    # the host's print is reported as a job, ended when its stream stopped
    evs = rec.wait_events(m, ["session_started", "job_started", "job_finished"], timeout=5)
    assert evs[2].reason == "done"
    rec.wait_state(m, "idle")
    sender.port.close()


def test_sender_sees_replies_to_its_own_queries_and_gets_resend_for_its_bad_lines(
    make_bridge, marlin_sim, recorder, uid, tmp_path
):
    rec = recorder()
    m, sim, link = start(make_bridge, marlin_sim, uid, tmp_path)
    rec.wait_state(m, "idle")
    sender = Sender(link)
    sender.reset()
    sender.send("M105")
    assert sender.seen[-1].startswith("ok T:")
    sender.send("M115")
    assert any(x.startswith("FIRMWARE_NAME:Marlin") for x in sender.seen)
    sender.port.write(b"N3 G28*1\n")  # a bad checksum from the sender: the sender is asked again
    lines = []
    wait_until(lambda: lines.extend(sender.buf.feed(sender.port.read(4096))) or "ok" in lines, what="reply")
    assert "Resend: 3" in lines
    sender.send("G28")  # now N3 with the right checksum
    assert [cmd for _, cmd in sim.commands].count("G28") == 1
    # a sender's print from SD is reported as today
    sender.send("M23 benchy.gcode")
    sender.send("M24")
    evs = rec.wait_events(m, ["session_started", "job_started", "job_finished"], timeout=8)
    assert evs[2].reason == "done"
    assert not [x for x in rec.of(events.MachineEvent, m) if x.type == "error"]
    sender.port.close()


def test_sender_over_tcp_shares_the_printer(make_bridge, marlin_sim, recorder, uid):
    import socket

    rec = recorder()
    m = uid("prusa")
    sim = marlin_sim(checksum_strict=True)
    bridge = make_bridge([{"id": m, "driver": "marlin", "port": sim.path, "passthrough_tcp": "127.0.0.1:0",
                           "poll_interval": 0.2}], bridge_id=uid("b"))
    rec.wait_state(m, "idle")
    port = bridge.machines[m].passthrough
    enc, buf, seen = MarlinLineEncoder(), LineBuffer(), []
    with socket.create_connection(port.address, timeout=2) as sock:
        wait_until(port.connected, what="bridge to accept the sender")
        for raw in [enc.reset()] + [enc.encode(c) for c in moves(300)]:
            sock.sendall(raw.encode())
            while not (seen and seen[-1].startswith("ok")):
                seen += buf.feed(sock.recv(4096))
            seen.append("")  # next line's ok
    assert sum(x.startswith("ok") for x in seen) == 301
    assert [c for _, c in sim.commands if c.startswith("G1")] == moves(300)
    assert not [x for x in seen if x.startswith(("ok T:", "SD printing", "Not SD", "Resend"))]


def test_sender_numbering_survives_the_printer_port_coming_back(make_bridge, marlin_sim, recorder, uid, tmp_path):
    rec = recorder()
    m, sim, link = start(make_bridge, marlin_sim, uid, tmp_path, reset_on_open=False)
    rec.wait_state(m, "idle")
    sender = Sender(link)
    sender.reset()
    for cmd in moves(5):
        sender.send(cmd)
    sim.unplug()
    rec.wait_state(m, "offline")
    sim.replug()  # a native-USB board: no reset; the sender carries on with N6
    rec.wait_state(m, "idle", timeout=5)
    for cmd in moves(10)[5:]:
        sender.send(cmd)  # raises if asked to resend
    assert [c for _, c in sim.commands if c.startswith("G1")] == moves(10)
    sender.port.close()


def test_host_streamed_print_is_a_job_with_slicer_progress(make_bridge, marlin_sim, recorder, uid, tmp_path):
    rec = recorder()
    m, sim, link = start(make_bridge, marlin_sim, uid, tmp_path)
    rec.wait_state(m, "idle")
    sender = Sender(link)
    sender.reset()
    for cmd in moves(5):
        sender.send(cmd)  # a few jogs are not a print
    time.sleep(0.3)
    assert "job_started" not in rec.event_types(m)
    program = moves(40)
    for i, cmd in enumerate(program):
        sender.send(cmd)
        if i == 30:
            sender.send("M73 P50 R3")
    rec.wait_state(m, "printing")
    wait_until(lambda: [s for s in rec.of(events.MachineStatus, m) if s.job and s.job.progress == 0.5],
               what="progress from M73")
    evs = rec.wait_events(m, ["session_started", "job_started", "job_finished"], timeout=5)
    assert evs[2].reason == "done"
    rec.wait_state(m, "idle")
    sender.port.close()
