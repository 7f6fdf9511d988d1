"""Config validation: a clear message and exit status 2."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fablab_bridge.__main__ import main
from fablab_bridge.config import ConfigError, parse_config

from devices import events
from tests.bridge.conftest import wait_until

EXAMPLE = Path(__file__).resolve().parents[2] / "firmware-bridge" / "example.toml"


def base(**machine):
    return {"bridge": {"id": "b1", "state_dir": "/tmp/x"},
            "machine": [{"id": "m1", "driver": "marlin", "port": "/dev/ttyUSB0"} | machine]}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "missing [bridge] table"),
        ({"bridge": {"id": "b1", "state_dir": "/x"}}, "at least one [[machine]]"),
        ({"bridge": {"id": "b 1", "state_dir": "/x"}, "machine": [{}]}, "not a valid id"),
        (base(driver="lathe"), "driver: must be one of marlin, grbl, power_plug"),
        (base(port=None) | {"machine": [{"id": "m1", "driver": "grbl"}]}, "needs 'port'"),
        (base(baud="fast"), "baud: expected int, got str"),
        (base(poll_interval=0), "poll_interval: must be > 0"),
        (base(driver="grbl", poll_interval=0.1), "limited to 5 Hz"),
        (base(lock="plug"), "'plug' needs a [machine.plug] table"),
        (base(driver="grbl", lock="firmware"), "only supported for marlin"),
        (base(colour="red"), "unknown key(s) colour"),
        (base(badge={"reader": "magstripe", "port": "/dev/x"}), "reader: must be one of rdm6300, wedge"),
        (base(plug={"kind": "tasmota"}), "missing required key 'device'"),
        (base() | {"mqtt": {"port": 99999}}, "port: out of range"),
        (base() | {"mqtt": {"url": "http://x"}}, "expected mqtt://"),
        (base() | {"mqtt": {"ca_file": "/nonexistent/ca.crt"}}, "no such file"),
        (base() | {"extra": {}}, "unknown key(s) extra"),
    ],
)
def test_invalid_configs_name_the_problem(raw, message):
    with pytest.raises(ConfigError) as exc:
        parse_config(raw)
    assert message in str(exc.value)


def test_duplicate_machine_ids():
    raw = base()
    raw["machine"].append(dict(raw["machine"][0]))
    with pytest.raises(ConfigError, match="duplicate machine id"):
        parse_config(raw)


def test_mqtt_url_and_defaults():
    cfg = parse_config(base() | {"mqtt": {"url": "mqtts://u:p@broker.example:8884"}})
    assert (cfg.mqtt.host, cfg.mqtt.port, cfg.mqtt.tls, cfg.mqtt.username, cfg.mqtt.password) == (
        "broker.example", 8884, True, "u", "p")
    assert cfg.mqtt.client_id == "fablab-bridge-b1"
    assert cfg.machines[0].baud == 115200


def test_cli_exit_status_2_on_bad_config(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[bridge]\nid = "b1"\nstate_dir = "/tmp"\n[[machine]]\nid = "m1"\ndriver = "marlin"\n')
    assert main([str(bad)]) == 2
    assert "needs 'port'" in capsys.readouterr().err
    bad.write_text("this is = = not toml")
    assert main([str(bad)]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.toml")]) == 2


def test_example_config_is_valid(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("secret\n")
    text = EXAMPLE.read_text().replace("/etc/fablab-bridge/mqtt-password", str(pw))
    cfg_file = tmp_path / "example.toml"
    cfg_file.write_text(text)
    assert main(["--check", str(cfg_file)]) == 0
    proc = subprocess.run([sys.executable, "-m", "fablab_bridge", str(tmp_path / "nope.toml")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "invalid config" in proc.stderr


def test_daemon_process_last_will_on_crash_and_clean_shutdown(broker, marlin_sim, recorder, uid, tmp_path):
    """The real CLI in a subprocess: killed -> the broker publishes its Last Will; SIGTERM -> offline too."""
    m, bid = uid("prusa"), uid("bridge")
    rec = recorder()
    sim = marlin_sim()
    cfg = tmp_path / "bridge.toml"
    cfg.write_text(f"""
[bridge]
id = "{bid}"
state_dir = "{tmp_path / 'state'}"
[mqtt]
host = "{broker.host}"
port = {broker.port}
[[machine]]
id = "{m}"
driver = "marlin"
port = "{sim.path}"
poll_interval = 0.2
boot_wait = 0.5
""")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))

    def bridge_online():
        return [s.online for s in rec.of(events.BridgeStatus) if s.bridge_id == bid]

    for sig in (signal.SIGKILL, signal.SIGTERM):
        proc = subprocess.Popen([sys.executable, "-m", "fablab_bridge", str(cfg)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            n = len(bridge_online())
            wait_until(lambda n=n: bridge_online()[n:] == [True], timeout=10, what="bridge online")
            rec.wait_state(m, "idle", timeout=10)
            time.sleep(0.2)
            proc.send_signal(sig)
            wait_until(lambda n=n: bridge_online()[n:] == [True, False], timeout=10, what=f"offline after {sig!r}")
            assert proc.wait(5) == (-signal.SIGKILL if sig == signal.SIGKILL else 0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stderr.close()
