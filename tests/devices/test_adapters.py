import json

from devices.adapters import MoonrakerAdapter, OctoPrintAdapter
from devices.observations import Fault, JobFinished, JobStarted, Reading, StateChanged


def of(kind, observations):
    return [o for o in observations if isinstance(o, kind)]


def test_octoprint_events_progress_and_temperatures():
    a = OctoPrintAdapter()
    obs = []
    for topic, payload in [
        ("octoPrint/event/Connected", {"_event": "Connected", "port": "/dev/ttyACM0"}),
        ("octoPrint/temperature/tool0", {"actual": 205.1, "target": 210.0, "_timestamp": 1}),
        ("octoPrint/temperature/bed", {"actual": 59.0, "target": 60.0}),
        ("octoPrint/event/PrintStarted", {"_event": "PrintStarted", "name": "benchy.gcode", "origin": "local"}),
        ("octoPrint/progress/printing", {"progress": 42, "path": "benchy.gcode"}),
        ("octoPrint/event/PrintPaused", {"_event": "PrintPaused"}),
        ("octoPrint/event/PrintResumed", {"_event": "PrintResumed"}),
        ("octoPrint/event/PrintDone", {"_event": "PrintDone", "name": "benchy.gcode", "time": 3600}),
        ("octoPrint/event/PrintStarted", {"_event": "PrintStarted", "name": "b.gcode"}),
        ("octoPrint/event/PrintFailed", {"_event": "PrintFailed", "reason": "error"}),
        ("octoPrint/event/Disconnected", {"_event": "Disconnected"}),
    ]:
        obs += a.feed(topic, json.dumps(payload).encode())
    assert of(JobStarted, obs) == [JobStarted("benchy.gcode"), JobStarted("b.gcode")]
    assert of(JobFinished, obs) == [JobFinished("done", "benchy.gcode"), JobFinished("error", "b.gcode")]
    assert [o.state for o in of(StateChanged, obs)] == ["printing", "paused", "printing", "idle", "printing", "idle",
                                                         "offline"]
    readings = [o.values for o in of(Reading, obs)]
    assert {"temps": {"hotend": {"actual": 205.1, "target": 210.0}}} in readings
    assert {"progress": 0.42} in readings
    assert a.feed("octoPrint/event/PrintDone", b"not json") == []
    assert a.feed("other/event/PrintDone", b"{}") == []


def test_moonraker_status_updates():
    a = MoonrakerAdapter("voron")
    t = "voron/klipper/status"

    def status(**objs):
        return json.dumps({"eventtime": 1.0, "status": objs})

    idle = status(print_stats={"state": "standby", "filename": ""}, extruder={"temperature": 25.0, "target": 0})
    obs = a.feed(t, idle)
    assert of(Reading, obs) == [Reading({"temps": {"hotend": {"actual": 25.0, "target": 0.0}}})]
    obs = a.feed(t, status(print_stats={"state": "printing", "filename": "cube.gcode"}))
    assert of(JobStarted, obs) == [JobStarted("cube.gcode")]
    assert a.feed(t, status(virtual_sdcard={"progress": 0.5}, heater_bed={"temperature": 60.2})) == [
        Reading({"progress": 0.5}), Reading({"temps": {"bed": {"actual": 60.2}}})]
    assert of(StateChanged, a.feed(t, status(print_stats={"state": "paused"}))) == [StateChanged("paused", "printing")]
    obs = a.feed(t, status(print_stats={"state": "error", "message": "MCU shutdown"}))
    assert of(Fault, obs) == [Fault("klipper_error", "MCU shutdown")]
    assert of(JobFinished, obs) == [JobFinished("error", "cube.gcode")]
    a.feed(t, status(print_stats={"state": "printing"}))
    assert of(JobFinished, a.feed(t, status(print_stats={"state": "complete"}))) == [JobFinished("done", "cube.gcode")]
    assert of(StateChanged, a.feed("voron/moonraker/status", b'{"server": "offline"}'))[0].state == "offline"
    assert a.feed(t, b"[]") == [] and a.feed("x/klipper/status", status()) == []
