import pytest

from devices.marlin import MarlinCodec, MarlinLineEncoder, checksum, parse_numbered, parse_temperatures
from devices.observations import (
    Ack,
    Busy,
    Fault,
    Firmware,
    JobFinished,
    JobStarted,
    Reading,
    Resend,
    Reset,
    StateChanged,
)


def feed_all(codec, lines):
    out = []
    for line in lines:
        out.extend(codec.feed(line))
    return out


def of(kind, observations):
    return [o for o in observations if isinstance(o, kind)]


def test_recorded_sd_print(capture):
    codec = MarlinCodec()
    obs = feed_all(codec, capture("marlin_sd_print.log"))
    assert isinstance(obs[0], Reset)
    (fw,) = of(Firmware, obs)
    assert fw.name == "Marlin bugfix-2.1.x"
    assert fw.caps["AUTOREPORT_TEMP"] and fw.caps["AUTOREPORT_SD_STATUS"] and not fw.caps["PROGRESS"]
    assert of(JobStarted, obs) == [JobStarted(file="BENCHY~1.GCO")]
    assert of(JobFinished, obs) == [JobFinished(reason="done", file="BENCHY~1.GCO")]
    states = [o.state for o in of(StateChanged, obs)]
    assert states == ["printing", "paused", "printing", "idle"]
    assert len(of(Busy, obs)) == 2
    progress = [o.values["progress"] for o in of(Reading, obs) if "progress" in o.values]
    assert progress[0] == 0.0 and progress[-1] == 1.0 and progress == sorted(progress)
    temps = [o.values["temps"] for o in of(Reading, obs) if "temps" in o.values]
    assert temps[0] == {"hotend": {"actual": 22.34, "target": 0.0}, "bed": {"actual": 21.88, "target": 0.0}}
    assert {"hotend": {"actual": 195.3}} in temps  # M109 wait line without target
    assert codec.state == "idle"


def test_malformed_lines_are_ignored_not_fatal():
    codec = MarlinCodec()
    for junk in ["", "   ", "SD printing byte 80000", "SD printing byte 5/0", "SD printing byte 9/3", "ok T:",
                 "Cap:GARBAGE", "\x00\xff", "Resend:", "T:abc /x", "//action:", "File opened:"]:
        out = codec.feed(junk)
        assert not of(JobStarted, out) and not of(Fault, out)
    assert codec.state == "idle"
    # a truncated temperature line yields what is readable
    assert parse_temperatures(" T:209.9 /210.0 B:59.9 /6") == {
        "hotend": {"actual": 209.9, "target": 210.0},
        "bed": {"actual": 59.9, "target": 6.0},
    }


def test_thermal_runaway_then_reset(capture):
    codec = MarlinCodec()
    obs = feed_all(codec, capture("marlin_thermal_runaway.log"))
    faults = of(Fault, obs)
    assert faults == [Fault(reason="firmware_error", detail="Thermal Runaway, system stopped! Heater_ID: 0")]
    assert of(JobFinished, obs) == [JobFinished(reason="error", file=None)]
    assert of(Resend, obs) == [Resend(13)]  # the checksum error is a comm error, not a fault
    assert [o.state for o in of(StateChanged, obs)] == ["printing", "error", "idle"]
    assert codec.state == "idle"


def test_print_started_from_screen_then_cancelled_by_action():
    codec = MarlinCodec()
    assert of(JobStarted, codec.feed("SD printing byte 10/100"))
    assert codec.feed("SD printing byte 10/100") == [Reading({"progress": 0.1})]
    out = codec.feed("//action:cancel")
    assert of(JobFinished, out) == [JobFinished(reason="cancelled")]
    assert codec.state == "idle"


def test_not_sd_printing_ends_a_job_as_stopped_and_resume_from_screen():
    codec = MarlinCodec()
    codec.feed("SD printing byte 10/100")
    codec.feed("//action:pause")
    assert codec.state == "paused"
    codec.feed("SD printing byte 15/100")  # read before the pause took effect: still paused
    codec.feed("SD printing byte 15/100")
    assert codec.state == "paused"
    codec.feed("SD printing byte 20/100")  # bytes advance: resumed on the printer
    assert codec.state == "printing"
    assert of(JobFinished, codec.feed("Not SD printing")) == [JobFinished(reason="stopped")]


def test_finished_file_still_open_is_not_a_new_job():
    codec = MarlinCodec()
    assert not of(JobStarted, codec.feed("SD printing byte 100/100"))


def test_ok_with_temperatures_and_busy_is_not_ack():
    codec = MarlinCodec()
    assert codec.feed("echo:busy: processing") == [Busy()]
    out = codec.feed("ok T:210.0 /210.0 B:60.0 /60.0 T0:210.0 /210.0 T1:25.0 /0.0 @:127 B@:0")
    assert out[0] == Ack()
    assert out[1].values["temps"]["hotend1"] == {"actual": 25.0, "target": 0.0}
    assert codec.feed("!! kill") and codec.state == "error"


def test_line_encoder_checksums_and_resend():
    enc = MarlinLineEncoder(history=3)
    assert enc.reset() == "N0 M110 N0*125\n"
    lines = [enc.encode(c) for c in ("M105", "M27 ; poll", "M115", "G28")]
    assert lines[0] == "N1 M105*38\n"  # 0x4E^0x31^0x20^0x4D^0x31^0x30^0x35
    assert lines[1] == f"N2 M27*{checksum('N2 M27')}\n"
    for line in lines:
        n, cmd, ok = parse_numbered(line)
        assert ok and cmd in ("M105", "M27", "M115", "G28")
    assert enc.resend(3) == lines[2:]
    assert enc.resend(5) == []
    with pytest.raises(KeyError):
        enc.resend(1)  # fell out of the history
    with pytest.raises(ValueError):
        enc.encode("M117 a*b")
    assert parse_numbered("N7 M105*1") == (7, "M105", False)
    assert parse_numbered("N7 M105") == (7, "M105", False)
    assert parse_numbered("M105") == (None, "M105", True)


@pytest.mark.parametrize("wording", ["Error: Missing checksum", "Error:checksum mismatch, Last Line: 4",
                                     "Error:No Line Number with checksum, Last Line: 4", "Error:Format error"])
def test_an_error_followed_by_resend_is_recoverable_whatever_its_wording(wording):
    codec = MarlinCodec()
    out = feed_all(codec, [wording, "Resend: 5", "ok"])
    assert not of(Fault, out) and codec.state == "idle" and of(Resend, out) == [Resend(5)]
    assert of(JobStarted, codec.feed("SD printing byte 10/100"))  # a later print is tracked
    assert codec.state == "printing"


def test_an_error_followed_by_a_halt_is_a_fault_with_its_cause():
    codec = MarlinCodec()
    codec.feed("SD printing byte 10/100")
    out = feed_all(codec, ["Error:MAXTEMP triggered", "Error:Printer halted. kill() called!"])
    assert of(Fault, out) == [Fault(reason="firmware_error", detail="MAXTEMP triggered")]
    assert of(JobFinished, out) == [JobFinished(reason="error")] and codec.state == "error"
    # an error nothing follows is a halt once the caller's timeout says so
    codec = MarlinCodec()
    assert codec.feed("Error:Heating failed") == [] and codec.expire_error() == [
        Fault(reason="firmware_error", detail="Heating failed"), StateChanged("error", "idle")]


def test_error_never_hides_a_print_once_the_firmware_answers_again():
    codec = MarlinCodec()
    feed_all(codec, ["Error:Printer stopped due to errors. Fix the error and use M999 to restart."])
    assert codec.state == "error"
    out = feed_all(codec, ["ok", "SD printing byte 10/100"])  # M999, then a print from the screen
    assert of(JobStarted, out) and codec.state == "printing"


def test_moves_a_host_streams_are_a_print_until_the_stream_stops():
    codec = MarlinCodec()
    out = []
    for i in range(25):
        out += codec.host_line(f"G1 X{i} E{i * 0.1:.1f}", now=i * 0.1)
    assert of(JobStarted, out) == [JobStarted(file=None)] and codec.state == "printing"
    assert codec.host_line("M73 P42 R10", now=2.6) == [Reading({"progress": 0.42})]
    assert not of(JobFinished, codec.feed("Not SD printing"))  # the printer's SD is not the host's print
    assert codec.host_idle(now=5.0, idle_s=10) == []
    assert of(JobFinished, codec.host_idle(now=20.0, idle_s=10)) == [JobFinished(reason="done")]
    assert codec.state == "idle" and not codec.host_job
    # a few moves now and then (jogging) are not a print
    assert not [o for t in range(0, 200, 11) for o in codec.host_line("G0 X1", now=100.0 + t)]
