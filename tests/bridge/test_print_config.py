"""Config for queued prints: transfer per machine, print server URLs and keys (secrets), spool dir."""

from __future__ import annotations

import pytest
from fablab_bridge.config import ConfigError, parse_config


def cfg(machine: dict, **bridge: str) -> dict:
    return {"bridge": {"id": "b1", "state_dir": "/tmp/fablab-b1"} | bridge, "machine": [machine]}


def test_transfer_options_and_defaults(tmp_path):
    key_file = tmp_path / "octo.key"
    key_file.write_text("SECRETKEY123\n")
    c = parse_config(cfg({"id": "mk4", "driver": "octoprint", "transfer": "octoprint",
                          "octoprint_url": "http://octopi.local:5000/", "octoprint_api_key_file": str(key_file)}))
    m = c.machines[0]
    assert m.transfer == "octoprint" and m.octoprint_url == "http://octopi.local:5000"
    assert m.octoprint_api_key == "SECRETKEY123" and "SECRETKEY123" not in repr(m)
    assert str(c.spool_dir) == "/tmp/fablab-b1/spool"
    c = parse_config(cfg({"id": "p", "driver": "marlin", "port": "/dev/ttyACM0", "transfer": "sd"},
                         spool_dir=str(tmp_path / "spool")))
    assert c.machines[0].transfer == "sd" and c.spool_dir == tmp_path / "spool"
    assert parse_config(cfg({"id": "p", "driver": "marlin", "port": "/dev/x"})).machines[0].transfer is None


@pytest.mark.parametrize("machine, message", [
    ({"id": "p", "driver": "marlin", "port": "/dev/x", "transfer": "ftp"}, "must be one of sd, stream"),
    ({"id": "p", "driver": "grbl", "port": "/dev/x", "transfer": "sd"}, "'sd' needs driver marlin"),
    ({"id": "p", "driver": "octoprint", "transfer": "octoprint"}, "needs octoprint_url and octoprint_api_key"),
    ({"id": "p", "driver": "octoprint", "transfer": "octoprint", "octoprint_url": "octopi.local",
      "octoprint_api_key": "k"}, "expected http(s)://host"),
    ({"id": "p", "driver": "moonraker", "source": "k1", "transfer": "moonraker"}, "needs moonraker_url"),
    ({"id": "p", "driver": "marlin", "port": "/dev/x", "transfer": "sd", "download_timeout": 0}, "must be > 0"),
    ({"id": "p", "driver": "octoprint", "transfer": "octoprint", "octoprint_url": "http://o",
      "octoprint_api_key_file": "/nonexistent/key"}, "cannot read"),
])
def test_bad_transfer_config_is_refused_with_the_reason(machine, message):
    with pytest.raises(ConfigError) as exc:
        parse_config(cfg(machine))
    assert message in str(exc.value)
