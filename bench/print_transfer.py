"""Benchmark: a queued print's G-code file (--mb, 20 MB) sent to a Marlin printer by the bridge over a pty.

    .venv/bin/python bench/print_transfer.py [--mb 20]

1. Baseline, measured in the same run: the same bytes (the numbered, checksummed lines the upload sends)
   written raw into a pty and drained by another process: what the pty itself carries.
2. SD upload (``M28``, numbered lines one in flight, ``M29``) through the bridge's serial thread to the
   simulator in instant mode (every ok at once) and checksum-strict mode; the card's file is checked.
3. Streamed printing of the same file through the same path; every command is checked, in order.

Printed: MB/s and lines/s per path and the ratio to the baseline. One line in flight (each ``ok`` awaited,
as Marlin hosts do) makes both paths latency-bound: two process wake-ups per line, not the pty's bandwidth;
a reference run of the same upload driven straight on the simulator's port (no bridge) shows how much of
that is the bridge's.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import select
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "firmware-bridge")]

from fablab_bridge.app import Bridge  # noqa: E402
from fablab_bridge.config import parse_config  # noqa: E402
from fablab_bridge.port_task import PortTask  # noqa: E402

from devices.gcode_stream import MarlinStream, gcode_lines  # noqa: E402
from devices.marlin import MarlinLineEncoder  # noqa: E402
from devices.marlin_upload import upload_stream  # noqa: E402
from devices.passthrough import PtyPort  # noqa: E402
from devices.simulators.marlin_sim import MarlinSimulator  # noqa: E402
from tests.support.broker import start_broker  # noqa: E402

NAME = "BENCH001.GCO"


def make_file(mb: float) -> bytes:
    lines, size, i = [], 0, 0
    while size < mb * 1_000_000:
        line = f"G1 X{i % 200}.{i % 10} Y{(i * 7) % 200}.{i % 7} E{i * 0.0123:.4f} F3000\n"
        lines.append(line)
        size += len(line)
        i += 1
    return "".join(lines).encode()


def chunks(data: bytes, size: int = 64 * 1024):  # noqa: ANN201
    for i in range(0, len(data), size):
        yield data[i:i + size]


# ---------------------------------------------------------------------------------------- children
def _drain(path: str, total: int, conn) -> None:  # noqa: ANN001
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    import termios
    import tty
    tty.setraw(fd)
    termios.tcflush(fd, termios.TCIOFLUSH)
    conn.send("ready")
    got = 0
    while got < total:
        select.select([fd], [], [], 1.0)
        got += len(os.read(fd, 1 << 16))
    conn.send(got)
    os.close(fd)


def _printer(link: str, conn) -> None:  # noqa: ANN001
    sim = MarlinSimulator(link, checksum_strict=True, files={})
    conn.send(sim.start())
    conn.recv()
    with sim.lock:
        content = sim.sd_content.get(NAME, b"")
        g1 = [c for _, c in sim.commands if c.startswith("G1")]
        conn.send((len(content), hashlib.sha256(content).hexdigest(), len(g1),
                   hashlib.sha256("\n".join(g1).encode()).hexdigest()))
    sim.stop()


class Child:
    def __init__(self, target, *args) -> None:  # noqa: ANN001
        ctx = multiprocessing.get_context("fork")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=target, args=(*args, child), daemon=True)
        self.proc.start()

    def recv(self, timeout: float = 900.0):  # noqa: ANN201
        if not self.conn.poll(timeout):
            raise TimeoutError("child process did not answer")
        return self.conn.recv()

    def stop(self):  # noqa: ANN201
        self.conn.send("stop")
        result = self.recv(30)
        self.proc.join(5)
        return result


# ---------------------------------------------------------------------------------------- runs
def baseline(tmp: Path, wire: bytes) -> float:
    port = PtyPort(str(tmp / "raw"))
    port.open()
    drain = Child(_drain, port.path, len(wire))
    drain.recv(10)
    t0 = time.perf_counter()
    assert port.master is not None
    view = memoryview(wire)
    while view:
        select.select([], [port.master], [], 1.0)
        try:
            view = view[os.write(port.master, view[:1 << 16]):]
        except BlockingIOError:
            continue
    got = drain.recv()
    elapsed = time.perf_counter() - t0
    port.close()
    assert got >= len(wire)
    return elapsed


def direct(tmp: Path, data: bytes) -> float:
    """Reference: the same upload, one line in flight, driven straight on the simulator's port (no bridge)."""
    import serial

    from devices.lines import LineBuffer
    printer = Child(_printer, str(tmp / "printer-direct"))
    path = printer.recv(10)
    stream = upload_stream(NAME, chunks(data), len(data))
    with serial.Serial(path, 115200, timeout=0) as port:
        fd, lines = port.fileno(), LineBuffer()
        time.sleep(0.5)  # the boot banner
        os.read(fd, 1 << 16)
        t0 = time.perf_counter()
        os.write(fd, stream.start().encode())
        while not stream.finished:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                for line in lines.feed(os.read(fd, 4096)):
                    for raw in stream.feed(line):
                        os.write(fd, raw.encode())
            for raw in stream.next_lines():
                os.write(fd, raw.encode())
        elapsed = time.perf_counter() - t0
    size, _, _, _ = printer.stop()
    assert stream.failed is None and size == len(data)
    return elapsed


def through_bridge(tmp: Path, broker, data: bytes, kind: str) -> tuple[float, tuple]:  # noqa: ANN001
    printer = Child(_printer, str(tmp / f"printer-{kind}"))
    path = printer.recv(10)
    raw = {
        "bridge": {"id": f"bench-{kind}", "state_dir": str(tmp / f"state-{kind}"), "log_level": "WARNING"},
        "mqtt": {"host": broker.host, "port": broker.port},
        "machine": [{"id": "printer", "driver": "marlin", "port": path, "boot_wait": 0.5,
                     "transfer": "sd" if kind == "upload" else "stream"}],
    }
    bridge = Bridge(parse_config(raw)).start()
    try:
        runner = bridge.machines["printer"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not runner.online:
            time.sleep(0.05)
        time.sleep(0.5)
        stream = (upload_stream(NAME, chunks(data), len(data)) if kind == "upload"
                  else MarlinStream(gcode_lines(chunks(data)), len(data)))
        task = PortTask(stream, kind if kind == "upload" else "print", file=NAME, silence_s=30)
        t0 = time.perf_counter()
        runner.run_port_task(task)
        elapsed = time.perf_counter() - t0
        assert task.error is None, task.error
    finally:
        bridge.stop()
        result = printer.stop()
    return elapsed, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=20.0)
    args = ap.parse_args()
    data = make_file(args.mb)
    lines = data.count(b"\n")
    enc = MarlinLineEncoder()
    wire = "".join(enc.encode(line) for line in data.decode().splitlines()).encode()
    mb = len(data) / 1e6
    print(f"print transfer: {mb:.1f} MB of G-code, {lines:,} lines ({len(wire) / 1e6:.1f} MB on the wire, "
          "numbered and checksummed)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-print-"))
    t_raw = baseline(tmp, wire)
    raw_lps = lines / t_raw
    print(f"  baseline: raw bytes through the pty   {len(wire) / 1e6 / t_raw:8.2f} MB/s  {raw_lps:12,.0f} lines/s")
    t_direct = direct(tmp, data)
    print(f"  reference: one line in flight, no bridge {mb / t_direct:8.2f} MB/s  {lines / t_direct:12,.0f} lines/s")
    broker = start_broker(tmp / "broker")
    try:
        expected = hashlib.sha256(data).hexdigest()
        for kind, label in (("upload", "SD upload (M28/M29)"), ("print", "streamed printing")):
            elapsed, (size, sha, g1, g1_sha) = through_bridge(tmp, broker, data, kind)
            if kind == "upload":
                assert size == len(data) and sha == expected, "the card's file differs from the offered one"
            else:
                want = hashlib.sha256("\n".join(data.decode().splitlines()).encode()).hexdigest()
                assert g1 == lines and g1_sha == want, "streamed lines lost or out of order"
            lps = lines / elapsed
            print(f"  {label:<36}  {mb / elapsed:8.2f} MB/s  {lps:12,.0f} lines/s   "
                  f"{elapsed:6.1f} s   ratio to baseline {lps / raw_lps:5.3f}x, "
                  f"to one-in-flight reference {t_direct / elapsed:4.2f}x")
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
