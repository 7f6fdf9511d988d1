import time

import pytest
import serial

from devices.grbl import GrblCodec
from devices.lines import LineBuffer
from devices.marlin import MarlinLineEncoder
from devices.simulators.grbl_sim import GrblSimulator
from devices.simulators.marlin_sim import MarlinSimulator


def read_until(port, predicate, timeout=3.0):
    lines, buf = [], LineBuffer()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines += buf.feed(port.read(4096))
        if predicate(lines):
            return lines
    raise AssertionError(f"timeout; got {lines}")


def test_marlin_sim_banner_checksums_heating_and_unplug(tmp_path):
    sim = MarlinSimulator(str(tmp_path / "printer"), heat_rate=5.0, resend_rate=0.0)
    sim.start()
    try:
        port = serial.Serial(sim.path, 115200, timeout=0.05)
        assert read_until(port, lambda ls: "start" in ls)[0] == "start"
        enc = MarlinLineEncoder()
        port.write(enc.reset().encode())
        port.write(enc.encode("M104 S200").encode())
        port.write(b"N5 M105*99\n")  # wrong line number and checksum
        lines = read_until(port, lambda ls: any(x.startswith("Resend") for x in ls))
        assert "Resend: 2" in lines
        time.sleep(0.5)
        port.write(enc.encode("M105").encode())
        temps = read_until(port, lambda ls: sum(x.startswith("ok T:") for x in ls) >= 1)
        actual = float(next(x for x in temps if x.startswith("ok T:")).split("T:")[1].split()[0])
        assert 100 < actual <= 200.5  # heating towards the target
        sim.unplug()
        with pytest.raises(serial.SerialException):
            port.read(10)
        port.close()
        sim.replug()
        with serial.Serial(sim.path, 115200, timeout=0.05) as again:
            assert "start" in read_until(again, lambda ls: "start" in ls)
    finally:
        sim.stop()


def test_grbl_sim_realtime_status_and_job(tmp_path):
    sim = GrblSimulator(str(tmp_path / "cnc"), move_time=0.05)
    sim.start()
    try:
        port = serial.Serial(sim.path, 115200, timeout=0.05)
        read_until(port, lambda ls: any(x.startswith("Grbl 1.1h") for x in ls))
        codec, seen = GrblCodec(), []
        port.write(b"G1 X5 F500\nG1 Y5\nM2\n")
        deadline = time.monotonic() + 3
        buf = LineBuffer()
        while time.monotonic() < deadline and "[MSG:Pgm End]" not in seen:
            port.write(b"?")
            time.sleep(0.03)
            for line in buf.feed(port.read(4096)):
                seen.append(line)
                codec.feed(line)
        assert seen.count("ok") == 3
        assert any(x.startswith("<Run|") for x in seen) and "[MSG:Pgm End]" in seen
        port.write(b"$I\nfoo\n$nope\n")
        lines = read_until(port, lambda ls: "error:3" in ls)
        assert "[VER:1.1h.20190825:]" in lines and "error:1" in lines
        sim.inject_alarm(2)
        port.write(b"G0 X1\n")
        assert "error:9" in read_until(port, lambda ls: "error:9" in ls)
        port.close()
    finally:
        sim.stop()
