import json

from devices.observations import JobFinished, JobStarted, Reading
from devices.power_plug import (
    PowerUseDetector,
    parse_shelly,
    parse_tasmota,
    shelly_switch,
    tasmota_switch,
)


def test_parse_tasmota_sensor_and_power():
    payload = json.dumps({"Time": "2026-03-01T10:00:00", "ENERGY": {"Total": 1.234, "Power": 812, "Voltage": 230}})
    r = parse_tasmota("tele/laser/SENSOR", payload.encode())
    assert r.power_w == 812.0 and r.energy_total_wh == 1234.0
    assert parse_tasmota("stat/laser/POWER", b"ON").relay_on is True
    assert parse_tasmota("stat/laser/POWER", b"maybe") is None
    assert parse_tasmota("tele/laser/SENSOR", b"{bad") is None
    assert parse_tasmota("tele/laser/SENSOR", b'{"ENERGY": {"Power": "x"}}').power_w is None
    assert tasmota_switch("laser", False) == ("cmnd/laser/POWER", b"OFF")


def test_parse_shelly():
    payload = {"id": 0, "source": "init", "output": True, "apower": 35.2, "voltage": 230.1,
               "aenergy": {"total": 1523.4, "by_minute": [1, 2, 3]}}
    r = parse_shelly("shellyplus1pm-a8/status/switch:0", json.dumps(payload))
    assert (r.power_w, r.energy_total_wh, r.relay_on) == (35.2, 1523.4, True)
    assert parse_shelly("x/status/switch:0", b"[]") is None
    assert shelly_switch("kiln", True) == ("kiln/command/switch:0", b"on")


def test_hysteresis_ignores_short_spikes_and_short_pauses():
    d = PowerUseDetector(threshold_w=50, min_on_s=10, min_off_s=30)
    events = []
    # a 5 s spike does not start a job
    for t, p in [(0, 0), (1, 500), (5, 500), (6, 0)]:
        events += d.feed(p, t)
    assert not [e for e in events if isinstance(e, JobStarted)]
    # sustained use starts it; a 20 s pause does not end it; a 30 s quiet period does
    timeline = [(100, 400)] + [(100 + i, 400) for i in range(1, 61)] + [(161 + i, 0) for i in range(20)]
    timeline += [(181 + i, 400) for i in range(10)] + [(191 + i, 0) for i in range(40)]
    for t, p in timeline:
        events += d.feed(p, t)
    starts = [e for e in events if isinstance(e, JobStarted)]
    ends = [e for e in events if isinstance(e, JobFinished)]
    assert len(starts) == 1 and len(ends) == 1
    # energy: 400 W for ~70.5 s (incl. ramps) ~ 7.8 Wh
    assert 7.0 < ends[0].energy_wh < 8.5
    assert isinstance(events[-1], Reading) and events[-1].values == {"power_w": 0}
    assert not d.in_use
