"""The SD upload over a real pty to the simulator (checksum-strict, random resends), driven the way the
bridge's serial thread drives it."""

from __future__ import annotations

import os
import select
import time

import serial

from devices.lines import LineBuffer
from devices.marlin_upload import sd_name, start_commands, upload_stream
from devices.simulators.marlin_sim import MarlinSimulator


def test_sd_names_are_8_3_and_distinct_per_job():
    a, b = sd_name("job-1", "Benchy v2 (final).gcode"), sd_name("job-2", "Benchy v2 (final).gcode")
    assert a != b
    for name in (a, b, sd_name("x", "../../etc/passwd"), sd_name("y", "....")):
        stem, ext = name.split(".")
        assert 1 <= len(stem) <= 8 and ext == "GCO" and stem.isalnum() and stem == stem.upper()
    assert start_commands(a) == [f"M23 {a}", "M24"]


def drive(sim: MarlinSimulator, stream, timeout: float = 20.0) -> None:
    with serial.Serial(sim.path, 115200, timeout=0) as port:
        fd, lines = port.fileno(), LineBuffer()
        deadline = time.monotonic() + 3
        while "start" not in sim.received and not sim.connected and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # the boot banner
        os.read(fd, 65536)
        os.write(fd, stream.start().encode())
        deadline = time.monotonic() + timeout
        while not stream.finished:
            assert time.monotonic() < deadline, "upload timed out"
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                for line in lines.feed(os.read(fd, 4096)):
                    for raw in stream.feed(line):
                        os.write(fd, raw.encode())
            for raw in stream.next_lines():
                os.write(fd, raw.encode())


def test_upload_reaches_the_card_intact_despite_resends(tmp_path):
    data = "".join(f"G1 X{i % 80} Y{i % 60} E{i / 100:.2f} ; {i}\n" for i in range(2000)).encode()
    sim = MarlinSimulator(str(tmp_path / "marlin"), checksum_strict=True, resend_rate=0.05, seed=2)
    sim.start()
    try:
        stream = upload_stream("PART0001.GCO", [data[i:i + 5000] for i in range(0, len(data), 5000)], len(data))
        drive(sim, stream)
        assert stream.failed is None and stream.resends > 0
        expected = b"".join(line.split(b";")[0].strip() + b"\n" for line in data.splitlines())
        assert sim.sd_content["PART0001.GCO"] == expected
        assert sim.files["PART0001.GCO"] == len(expected) and sim.writing is None
    finally:
        sim.stop()


def test_a_name_the_card_refuses_fails_the_upload(tmp_path):
    sim = MarlinSimulator(str(tmp_path / "marlin"))
    sim.start()
    try:
        stream = upload_stream("TOOLONGNAME.GCO", [b"G1 X1\n"], 6)
        drive(sim, stream, timeout=5)
        assert stream.failed and "refused the file" in stream.failed
    finally:
        sim.stop()
