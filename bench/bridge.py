"""Benchmark of the firmware bridge: codec throughput and end-to-end latency.

    .venv/bin/python bench/bridge.py [--rounds 200] [--lines 300000]

1. Lines per second the Marlin and GRBL codecs parse (a realistic mix of recorded lines). Target >= 100,000.
2. Latency from a simulator state change to the MQTT message at a subscriber, through a real pty, the
   bridge and a private Mosquitto: Marlin pause/resume (pushed by the firmware as //action: lines) ->
   retained status; Marlin 'Done printing file' -> job_finished event (through the SQLite outbox);
   GRBL feed hold/resume, which the bridge only sees by polling '?' (at 5 Hz here). Target p99 < 200 ms.
3. Marlin pass-through: a G-code file of --passthrough-lines (100,000) numbered, checksummed lines streamed
   by a sender that waits for each ``ok`` (as OctoPrint and Pronterface do), through the bridge's pty to the
   simulator in checksum-strict mode, against the same file written to the simulator's pty directly in the
   same run. Target >= 0.8x. Run with the printer answering at once (the bridge's whole overhead shows:
   two more process wake-ups per line), and with each ok delayed by the line's time on a --baud (250,000)
   UART, where the printer's own acknowledgement rate is the limit; --ack-ms adds runs with a fixed delay.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import select
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "firmware-bridge")]

import paho.mqtt.client as mqtt  # noqa: E402
from fablab_bridge.app import Bridge  # noqa: E402
from fablab_bridge.config import parse_config  # noqa: E402

from devices import events  # noqa: E402
from devices.grbl import GrblCodec  # noqa: E402
from devices.lines import LineBuffer  # noqa: E402
from devices.marlin import MarlinCodec, MarlinLineEncoder  # noqa: E402
from devices.simulators.grbl_sim import GrblSimulator  # noqa: E402
from devices.simulators.marlin_sim import MarlinSimulator  # noqa: E402
from tests.support.broker import start_broker  # noqa: E402

MARLIN_MIX = [
    "ok",
    "ok T:210.00 /210.00 B:60.00 /60.00 @:64 B@:30",
    " T:209.87 /210.00 B:59.95 /60.00 @:66 B@:28",
    "SD printing byte 123456/1234567",
    "echo:busy: processing",
    "ok",
    "ok",
    "echo:Unknown command: \"M999\"",
    "//action:notification Printing...",
    "ok",
]
GRBL_MIX = [
    "<Run|MPos:12.500,13.000,-1.000|FS:500,12000>",
    "ok",
    "<Run|MPos:12.600,13.000,-1.000|FS:500,12000|Ov:100,100,100>",
    "ok",
    "<Run|MPos:12.700,13.000,-1.000|FS:500,12000|WCO:0.000,0.000,0.000>",
    "ok",
    "<Hold:0|MPos:12.700,13.000,-1.000|FS:0,12000>",
    "<Run|MPos:12.800,13.000,-1.000|FS:500,12000|Pn:Z>",
]


def codec_rate(codec_factory, mix: list[str], n: int) -> float:
    lines = (mix * (n // len(mix) + 1))[:n]
    best = 0.0
    for _ in range(3):
        codec = codec_factory()
        feed = codec.feed
        start = time.perf_counter()
        for line in lines:
            feed(line)
        best = max(best, n / (time.perf_counter() - start))
    return best


class Watcher:
    """Subscriber that timestamps the first message matching a predicate."""

    def __init__(self, host: str, port: int) -> None:
        self.cond = threading.Condition()
        self.predicate = None
        self.hit: float | None = None
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        ready = threading.Event()
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.connect(host, port)
        self.client.subscribe("fablab/v1/machine/#", qos=1)
        self.client.loop_start()
        ready.wait(5)

    def _on_message(self, client, userdata, message) -> None:  # noqa: ANN001
        now = time.perf_counter()
        try:
            msg = events.decode(message.topic, message.payload)
        except events.ContractError as exc:
            print(f"  invalid message on {message.topic}: {exc.reason}", file=sys.stderr)
            return
        with self.cond:
            if self.predicate is not None and self.hit is None and self.predicate(msg):
                self.hit = now
                self.cond.notify_all()

    def measure(self, action, predicate, timeout: float = 5.0, jitter: float = 0.0) -> float:
        """Seconds from ``action()`` to the first message matching ``predicate``. ``jitter``: a random
        wait first, so changes do not phase-lock with the bridge's polling."""
        if jitter:
            time.sleep(random.uniform(0, jitter))
        with self.cond:
            self.predicate, self.hit = predicate, None
        start = time.perf_counter()
        action()
        with self.cond:
            self.cond.wait_for(lambda: self.hit is not None, timeout)
            hit, self.predicate = self.hit, None
        if hit is None:
            raise TimeoutError("no matching message")
        return hit - start

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def status_is(machine: str, state: str):
    return lambda m: isinstance(m, events.MachineStatus) and m.machine == machine and m.state == state


def event_is(machine: str, etype: str):
    return lambda m: isinstance(m, events.MachineEvent) and m.machine == machine and m.type == etype


def summary(name: str, samples: list[float]) -> None:
    ms = sorted(s * 1000 for s in samples)
    p99 = ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))]
    print(f"  {name:<44} n={len(ms):4d}  median {statistics.median(ms):7.2f} ms  p99 {p99:7.2f} ms"
          f"  max {ms[-1]:7.2f} ms   {'OK' if p99 < 200 else 'at/over target'}")


def latency(rounds: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-bridge-"))
    broker = start_broker(tmp / "broker")
    marlin = MarlinSimulator(str(tmp / "marlin"), heat_rate=50, print_rate=10, files={"big.gcode": 10**9})
    grbl = GrblSimulator(str(tmp / "grbl"), move_time=10.0)
    marlin.start()
    grbl.start()
    raw = {
        "bridge": {"id": "bench", "state_dir": str(tmp / "state"), "log_level": "WARNING"},
        "mqtt": {"host": broker.host, "port": broker.port},
        "machine": [
            {"id": "printer", "driver": "marlin", "port": marlin.path, "poll_interval": 0.2, "boot_wait": 0.5},
            {"id": "cnc", "driver": "grbl", "port": grbl.path, "poll_interval": 0.2},
        ],
    }
    bridge = Bridge(parse_config(raw)).start()
    watcher = Watcher(broker.host, broker.port)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (bridge.machines["printer"].online and bridge.machines["cnc"].online):
            time.sleep(0.05)
        pause, done, hold = [], [], []
        watcher.measure(marlin.start_print, status_is("printer", "printing"))
        for _ in range(rounds):
            pause.append(watcher.measure(marlin.pause, status_is("printer", "paused"), jitter=0.01))
            pause.append(watcher.measure(marlin.resume, status_is("printer", "printing"), jitter=0.01))
        for _ in range(max(10, rounds // 10)):
            done.append(watcher.measure(marlin.finish, event_is("printer", "job_finished")))
            watcher.measure(marlin.start_print, status_is("printer", "printing"))
        watcher.measure(lambda: grbl.run_job(moves=10**6, end=False), status_is("cnc", "busy"))
        for _ in range(max(20, rounds // 4)):
            hold.append(watcher.measure(grbl.hold, status_is("cnc", "paused"), jitter=0.2))
            hold.append(watcher.measure(grbl.resume, status_is("cnc", "busy"), jitter=0.2))
        print("End-to-end latency, simulator state change -> MQTT message at a subscriber:")
        summary("Marlin pause/resume -> status (pushed)", pause)
        summary("Marlin Done printing -> job_finished (outbox)", done)
        summary("GRBL hold/resume -> status (5 Hz polling)", hold)
        print("    (GRBL reports state only when asked: latency is bounded by poll_interval, here 0.2 s = 5 Hz max)")
    finally:
        watcher.close()
        bridge.stop()
        marlin.stop()
        grbl.stop()
        broker.stop()


def stream(path: str, program: list[str]) -> float:
    """Lines/s of a sender that writes one numbered line and waits for its ``ok`` (raw pty, no pyserial)."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    try:
        buf, enc = LineBuffer(), MarlinLineEncoder(history=8)
        poller = select.poll()
        poller.register(fd, select.POLLIN)

        def wait_ok() -> None:
            while True:
                if not poller.poll(5000):
                    raise TimeoutError("no ok from the printer")
                for line in buf.feed(os.read(fd, 4096)):
                    if line.startswith("Resend"):
                        raise RuntimeError(f"sender asked to resend: {line}")
                    if line.startswith("ok"):
                        return

        time.sleep(0.3)  # the banner of a board reset by the open, then drain it
        while poller.poll(100):
            os.read(fd, 4096)
        buf.clear()
        os.write(fd, enc.reset().encode())
        wait_ok()
        start = time.perf_counter()
        for cmd in program:
            os.write(fd, enc.encode(cmd).encode())
            wait_ok()
        return len(program) / (time.perf_counter() - start)
    finally:
        os.close(fd)


def _printer_process(link: str, ack_ms: float, baud: int | None, conn) -> None:  # noqa: ANN001
    """The simulated printer in its own process (a real one is its own device): no shared interpreter lock."""
    sim = MarlinSimulator(link, checksum_strict=True, ack_delay=ack_ms / 1000, baud=baud, tick=0.05)
    conn.send(sim.start())
    conn.recv()  # until told to stop
    with sim.lock:
        conn.send((list(sim.commands), sim.overruns))
    sim.stop()


def _sender_process(path: str, program: list[str], conn) -> None:  # noqa: ANN001
    conn.send(stream(path, program))


class _Child:
    def __init__(self, target, *args) -> None:  # noqa: ANN001
        ctx = multiprocessing.get_context("fork")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=target, args=(*args, child), daemon=True)
        self.proc.start()

    def recv(self, timeout: float = 600.0):  # noqa: ANN201
        if not self.conn.poll(timeout):
            raise TimeoutError("child process did not answer")
        return self.conn.recv()

    def stop(self):  # noqa: ANN201
        self.conn.send("stop")
        result = self.recv(10)
        self.proc.join(5)
        return result


def passthrough(n: int, ack_ms: float, baud: int | None = None) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-passthrough-"))
    program = [f"G1 X{i % 200}.{i % 10} Y{(i * 7) % 200} E{i * 0.01:.2f} F3000" for i in range(n)]
    printer = _Child(_printer_process, str(tmp / "direct"), ack_ms, baud)
    path = printer.recv(10)
    direct = _Child(_sender_process, path, program).recv()
    commands, _ = printer.stop()
    assert [c for _, c in commands if c.startswith("G1")] == program
    broker = start_broker(tmp / "broker")
    printer = _Child(_printer_process, str(tmp / "printer"), ack_ms, baud)
    path = printer.recv(10)
    link = str(tmp / "ttyPRINTER")
    raw = {
        "bridge": {"id": "bench-pt", "state_dir": str(tmp / "state"), "log_level": "WARNING"},
        "mqtt": {"host": broker.host, "port": broker.port},
        "machine": [{"id": "printer", "driver": "marlin", "port": path, "passthrough": link, "boot_wait": 0.5}],
    }
    bridge = Bridge(parse_config(raw)).start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not bridge.machines["printer"].online:
            time.sleep(0.05)
        via = _Child(_sender_process, link, program).recv()
    finally:
        bridge.stop()
        commands, overruns = printer.stop()
        broker.stop()
    assert [c for _, c in commands if c.startswith("G1")] == program, "lines lost or out of order"
    assert all(num is not None for num, _ in commands) and overruns == 0
    polls = sum(1 for _, c in commands if c in ("M105", "M27"))
    ratio = via / direct
    label = f"{baud:,} baud line time" if baud else f"printer ack {ack_ms:4.1f} ms"
    print(f"  {label:<26}: direct {direct:9,.0f} lines/s   pass-through {via:9,.0f} lines/s   "
          f"ratio {ratio:4.2f}x   {'OK' if ratio >= 0.8 else 'under target'}  ({polls} bridge polls interleaved)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--passthrough-lines", type=int, default=100_000)
    parser.add_argument("--ack-ms", type=float, action="append", help="printer ack time per command (ms)")
    parser.add_argument("--baud", type=int, default=250_000, help="UART rate of the modelled printer")
    parser.add_argument("--only-passthrough", action="store_true")
    args = parser.parse_args()
    print(f"Marlin pass-through, {args.passthrough_lines:,} lines, sender waiting for each ok (target >= 0.8x):")
    for ack_ms in args.ack_ms or [0.0]:
        passthrough(args.passthrough_lines, ack_ms)  # answering at once: the bridge's whole overhead
    passthrough(args.passthrough_lines, 0.0, args.baud)  # each line's time on the printer's UART
    if args.only_passthrough:
        return
    print("Codec throughput (best of 3):")
    for name, factory, mix in (("Marlin", MarlinCodec, MARLIN_MIX), ("GRBL", GrblCodec, GRBL_MIX)):
        rate = codec_rate(factory, mix, args.lines)
        print(f"  {name:<7} {rate:12,.0f} lines/s   target 100,000   ratio {rate / 100_000:5.2f}x")
    latency(args.rounds)


if __name__ == "__main__":
    main()
