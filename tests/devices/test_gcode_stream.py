"""The streaming bookkeeping alone (devices/gcode_stream.py): what goes out, in what order, and why it stops."""

from __future__ import annotations

from devices.gcode_stream import GrblStream, MarlinStream, gcode_lines
from devices.marlin import parse_numbered


def source(*lines: str) -> list[tuple[str, int]]:
    return list(gcode_lines([("\n".join(lines) + "\n").encode()]))


def test_gcode_lines_drop_comments_but_count_their_bytes():
    data = b"; header\nG1 X1 ; move\n(paren) G0 Y2\n\nM2"
    got = list(gcode_lines([data[:7], data[7:20], data[20:]]))  # chunk borders inside lines
    assert [c for c, _ in got] == ["", "G1 X1", "G0 Y2", "", "M2"]
    assert sum(n for _, n in got) == len(data)


def test_grbl_keeps_the_rx_buffer_filled_but_never_over():
    cmds = [f"G1 X{i} Y{i} F1000" for i in range(40)]
    s = GrblStream(source(*cmds), 0, rx_buffer=128)
    first = s.next_lines()
    assert sum(len(x) for x in first) <= 127 < sum(len(x) for x in first) + len(first[0])
    assert s.next_lines() == []  # full: waits for an ok
    s.feed("ok")
    more = s.next_lines()
    assert len(more) >= 1 and s.inflight_bytes <= 127
    while not s.finished:
        s.feed("ok")
        s.next_lines()
    assert s.lines_acked == 40 and s.failed is None


def test_grbl_error_names_the_line_and_stops():
    s = GrblStream(source("G0 X0", "G1 X1", "G1 Q", "G1 X3", "G1 X4"), 0)
    assert len(s.next_lines()) == 5
    s.feed("ok")
    s.feed("ok")
    s.feed("error:20")
    assert s.finished and s.failed == "GRBL refused line 3 (G1 Q): error:20"
    assert s.next_lines() == []


def test_grbl_alarm_and_reset_stop_the_stream():
    s = GrblStream(source("G1 X1"), 0)
    s.next_lines()
    s.feed("ALARM:1")
    assert s.failed and "ALARM:1" in s.failed
    s = GrblStream(source("G1 X1"), 0)
    s.next_lines()
    s.feed("Grbl 1.1h ['$' for help]")
    assert s.failed == "GRBL reset during the job"


def test_marlin_one_line_in_flight_with_resend():
    s = MarlinStream(source("G28", "G1 X1", "G1 X2"), 0)
    assert s.start() == "N0 M110 N0*125\n"
    assert s.next_lines() == []  # M110 not acknowledged yet
    s.feed("ok")
    (line1,) = s.next_lines()
    assert parse_numbered(line1) == (1, "G28", True)
    s.feed("ok")
    (line2,) = s.next_lines()
    assert s.feed("Error:checksum mismatch, Last Line: 1") == []
    assert s.feed("Resend: 2") == [line2]
    s.feed("ok")  # completes the Resend: acknowledges nothing
    assert s.next_lines() == []
    s.feed("ok")  # the re-sent line's own ok
    (line3,) = s.next_lines()
    assert parse_numbered(line3) == (3, "G1 X2", True)
    s.feed("ok")
    assert s.next_lines() == [] and s.finished  # the end of the file is found by asking for more
    assert s.failed is None and s.lines_acked == 3 and s.resends == 1


def test_marlin_halt_and_cancel_with_closing_lines():
    s = MarlinStream(source("G1 X1", "G1 X2"), 0)
    s.start()
    s.feed("ok")
    s.next_lines()
    s.feed("Error:Printer halted. kill() called!")
    assert s.finished and "halted" in (s.failed or "")
    s = MarlinStream(source("M28 A.GCO", "G1 X1", "G1 X2", "G1 X3"), 0)
    s.start()
    s.feed("ok")
    s.next_lines()
    s.cancel("withdrawn", ["M29 A.GCO"])
    assert not s.finished  # the M28 line still awaits its ok, then M29 goes out
    s.feed("ok")
    (closing,) = s.next_lines()
    assert parse_numbered(closing)[1] == "M29 A.GCO"
    s.feed("ok")
    assert s.finished and s.failed == "withdrawn"


def test_pause_holds_the_file_but_not_queries():
    s = MarlinStream(source("G1 X1", "G1 X2"), 0)
    s.start()
    s.feed("ok")
    s.paused = True
    assert s.next_lines() == []
    s.urgent.append("M105")
    (query,) = s.next_lines()
    assert parse_numbered(query)[1] == "M105"
    s.feed("ok")
    s.paused = False
    assert parse_numbered(s.next_lines()[0])[1] == "G1 X1"
    g = GrblStream(source("G1 X1"), 0)
    g.paused = True
    assert g.next_lines() == [] and not g.finished
    g.paused = False
    assert g.next_lines() == ["G1X1\n"]
