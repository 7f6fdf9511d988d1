from devices.grbl import GrblCodec, parse_status
from devices.observations import (
    Ack,
    Fault,
    Firmware,
    JobFinished,
    JobStarted,
    Reading,
    Rejected,
    Reset,
    StateChanged,
)


def of(kind, observations):
    return [o for o in observations if isinstance(o, kind)]


def test_parse_status_fields():
    s = parse_status("<Hold:1|WPos:1.000,-2.500,3.000|Bf:15,128|FS:500,12000|Ln:99|Ov:100,90,110|Pn:XYZP|A:SFM>")
    assert s.state == "Hold" and s.substate == 1
    assert s.wpos == (1.0, -2.5, 3.0) and s.mpos is None
    assert (s.feed, s.spindle, s.buffer, s.line) == (500.0, 12000.0, (15, 128), 99)
    assert s.overrides == (100, 90, 110) and s.pins == "XYZP" and s.accessories == "SFM"
    assert parse_status("<Idle|MPos:0,0,0|F:300>").feed == 300.0
    for bad in ("<Idle|MPos:0,0", "Idle|MPos:0,0,0>", "<Bogus>", "<Run|FS:1>", "<Run|Ov:1,2>", "<>", "<Run|MPos:x>"):
        assert parse_status(bad) is None


def test_recorded_job(capture):
    codec = GrblCodec()
    obs = []
    for line in capture("grbl_job.log"):
        obs.extend(codec.feed(line))
    assert isinstance(obs[0], Reset)
    fws = of(Firmware, obs)
    assert [f.name for f in fws] == ["Grbl 1.1h", "Grbl 1.1h.20190825", "Grbl 1.1h.20190825"]
    assert fws[-1].caps["VARIABLE_SPINDLE"] is True and fws[-1].caps["COREXY"] is False  # [OPT:V,15,128]
    assert of(JobStarted, obs) == [JobStarted(), JobStarted()]
    assert of(JobFinished, obs) == [JobFinished(reason="done"), JobFinished(reason="alarm")]
    assert [o.state for o in of(StateChanged, obs)] == [
        "alarm", "idle", "busy", "paused", "busy", "idle", "busy", "alarm",
    ]
    # a refused line is the sender's reply, never a machine fault
    assert of(Fault, obs) == [Fault("alarm:1", detail="hard limit", fatal=True)]
    assert of(Rejected, obs) == [Rejected("error:20")]
    assert len(of(Ack, obs)) == 4
    # WPos is derived from MPos once a WCO is known, and the other way round
    readings = [o.values for o in of(Reading, obs)]
    wpos_only = next(r for r in readings if r.get("wpos") == [2.5, 3.0, -1.0])
    assert wpos_only["mpos"] == [12.5, 13.0, -1.0]
    assert any(r.get("grbl_state") == "Hold:1" for r in readings)
    assert codec.state == "alarm"


def test_pgm_end_then_idle_gives_one_job_finished():
    codec = GrblCodec()
    codec.feed("<Run|MPos:0,0,0|FS:0,0>")
    assert of(JobFinished, codec.feed("[MSG:Pgm End]"))
    assert not of(JobFinished, codec.feed("<Idle|MPos:0,0,0|FS:0,0>"))
    assert codec.feed("<Jog|MPos:0,0,0|FS:0,0>")[0] == StateChanged("busy", "idle")
    assert not codec.in_job  # jogging is not a job


def test_reset_mid_job_finishes_it():
    codec = GrblCodec()
    codec.feed("<Run|MPos:0,0,0|FS:0,0>")
    out = codec.feed("Grbl 1.1f ['$' for help]")
    assert of(JobFinished, out) == [JobFinished(reason="reset")]
    assert codec.feed("ALARM:x")[0] == Fault("alarm:x", detail="", fatal=True)


def test_pgm_end_says_idle_at_once_with_the_finished_job():
    codec = GrblCodec()
    codec.feed("<Run|MPos:0,0,0|FS:0,0>")
    out = codec.feed("[MSG:Pgm End]")
    assert of(JobFinished, out) == [JobFinished(reason="done")]
    assert of(StateChanged, out) == [StateChanged("idle", "busy")] and codec.state == "idle"
    assert not codec.feed("<Idle|MPos:0,0,0|FS:0,0>")[:-1]  # only the reading: nothing changed


def test_sender_error_replies_are_not_faults():
    codec = GrblCodec()
    codec.feed("<Run|MPos:0,0,0|FS:0,0>")
    assert codec.feed("error:22") == [Rejected("error:22")]
    assert codec.in_job and codec.state == "busy"
