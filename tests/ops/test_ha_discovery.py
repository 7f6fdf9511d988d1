"""Home Assistant MQTT discovery: the payloads (schema keys, stable ids, no names by default), the ACL that
`fablab mosquitto-config` writes for it, and the worker publishing through a real Mosquitto that enforces
that ACL: retained configs per machine, state updates, and the empty retained config of a retired machine."""

from __future__ import annotations

import getpass
import json
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest

from fablab.domain import ha_discovery as ha
from fablab.extensions import db
from fablab.models.usage import UsageSession
from fablab.services import ha_discovery as ha_service
from fablab.services import usage as usage_service
from fablab.worker.mqtt import MqttSettings, MqttWorker
from tests.support.broker import find_mosquitto, free_port, wait_for_port

needs_mosquitto = pytest.mark.skipif(find_mosquitto() is None, reason="no mosquitto binary")
NOW = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
PRINTER = ha.MachineInfo("printer-1", "Printer One", "3D Printer", ("bridge-a",))
SCHEMA_KEYS = {"name", "unique_id", "state_topic", "availability", "device", "default_entity_id"}


def wait_until(predicate, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# --- the payloads (pure) ---------------------------------------------------------------------------


def test_every_entity_has_the_schema_keys_and_a_device() -> None:
    configs = ha.machine_configs(PRINTER, "homeassistant", "Fab Lab Berlin")
    assert len(configs) == 5
    components = sorted(t.split("/")[1] for t in configs)
    assert components == ["binary_sensor", "sensor", "sensor", "sensor", "sensor"]
    for topic, payload in configs.items():
        assert topic.startswith("homeassistant/") and topic.endswith("/config")
        assert SCHEMA_KEYS <= payload.keys(), (topic, payload.keys())
        assert payload["default_entity_id"] == f"{topic.split('/')[1]}.{payload['unique_id'].replace('-', '_')}"
        assert re.fullmatch(r"(sensor|binary_sensor)\.[a-z0-9_]+", payload["default_entity_id"])
        for a in payload["availability"]:
            assert {"topic", "payload_available", "payload_not_available"} <= a.keys()
        device = payload["device"]
        assert device["identifiers"] == ["fablab_printer-1"]
        assert (device["name"], device["manufacturer"], device["model"]) == ("Printer One", "Fab Lab Berlin",
                                                                             "3D Printer")
    by_key = {t.split("/")[3]: p for t, p in configs.items()}
    # what the bridge publishes is read from its retained status; the rest from the server's state topic
    assert by_key["state"]["state_topic"] == "fablab/v1/machine/printer-1/status"
    assert by_key["in_use"]["state_topic"] == "fablab/v1/machine/printer-1/status"
    assert by_key["progress"]["unit_of_measurement"] == "%"
    assert by_key["user"]["state_topic"] == by_key["next_free"]["state_topic"] == "fablab/ha/printer-1/state"
    assert by_key["next_free"]["device_class"] == "timestamp"
    # availability follows the bridge's status (its Last Will is {"online": false}) or the worker's
    assert by_key["state"]["availability"][0]["topic"] == "fablab/v1/bridge/bridge-a/status"
    assert "value_json.online" in by_key["state"]["availability"][0]["value_template"]
    assert by_key["user"]["availability"][0]["topic"] == ha.SERVER_STATUS_TOPIC


def test_unique_ids_are_stable_and_distinct() -> None:
    first = ha.machine_configs(PRINTER, "homeassistant", "Lab")
    again = ha.machine_configs(ha.MachineInfo("printer-1", "Renamed", "Other", ()), "other-prefix", "Lab 2")
    ids = [p["unique_id"] for p in first.values()]
    assert ids == [p["unique_id"] for p in again.values()]  # a rename keeps the entities
    laser = ha.machine_configs(ha.MachineInfo("laser.1", "Laser", "Laser"), "homeassistant", "Lab")
    assert len(set(ids) | {p["unique_id"] for p in laser.values()}) == 10
    assert all(t.split("/")[2] == "fablab_laser_1" for t in laser)  # node ids allow [a-zA-Z0-9_-] only


def test_plan_sends_only_changes_and_clears_what_went_away() -> None:
    a, b = ha.encode({"x": 1}), ha.encode({"y": 2})
    published = {"t/a": ha.digest(a), "t/gone": ha.digest(b)}
    send, clear = ha.plan(published, {"t/a": a, "t/b": b})
    assert send == {"t/b": b} and clear == ["t/gone"]
    send, _ = ha.plan(published, {"t/a": a}, forced={"t/a"})
    assert send == {"t/a": a}


def test_templates_render_what_home_assistant_expects() -> None:
    jinja2 = pytest.importorskip("jinja2")
    configs = {t.split("/")[3]: p for t, p in ha.machine_configs(PRINTER, "homeassistant", "Lab").items()}

    def render(key: str, payload: dict) -> str:
        return jinja2.Template(configs[key]["value_template"]).render(value_json=payload)

    printing = {"state": "printing", "job": {"file": "a.gcode", "progress": 0.425}}
    assert render("state", printing) == "printing"
    assert render("progress", printing) == "42.5"
    assert render("progress", {"state": "idle"}) == "0"
    assert render("in_use", printing) == "ON" and render("in_use", {"state": "idle"}) == "OFF"
    assert render("user", {"user": None}) == ha.NOBODY
    assert render("next_free", {"next_free": None}) == "None"
    avail = jinja2.Template(configs["state"]["availability"][0]["value_template"])
    assert avail.render(value_json={"online": False}) == "offline"


# --- loading from the database --------------------------------------------------------------------


def _open_session(machine, member) -> None:
    db.session.add(UsageSession(key=f"k-{uuid.uuid4().hex[:6]}", machine_id=machine.id, member_id=member.id,
                                start_at=datetime.now(UTC) - timedelta(minutes=5), source="event", open=True))
    db.session.commit()


def test_current_user_is_a_pseudonym_unless_the_lab_shows_names(app, app_ctx, make_member, make_machine,
                                                                 monkeypatch) -> None:
    printer = make_machine("printer-1", name="Printer One", type_slug="3d_printer")
    ada = make_member("ada@example.org", name="Ada Lovelace")
    _open_session(printer, ada)
    want, _ = ha_service.wanted(datetime.now(UTC))
    state = json.loads(want["fablab/ha/printer-1/state"])
    assert state["user"] == f"Member {ada.member_no}"
    assert not any(b"Ada" in data or b"Lovelace" in data for data in want.values())
    monkeypatch.setitem(app.config, "FABLAB_SHOW_MEMBER_NAMES", True)
    want, _ = ha_service.wanted(datetime.now(UTC))
    assert json.loads(want["fablab/ha/printer-1/state"])["user"] == "Ada Lovelace"


def test_acl_rules_go_in_the_server_users_block(app, app_ctx, make_machine, monkeypatch, tmp_path) -> None:
    make_machine("printer-1")
    usage_service.add_bridge("bridge-a", ["printer-1"])
    db.session.commit()
    monkeypatch.setitem(app.config, "FABLAB_MQTT_URL", "mqtt://fablab:server-secret@127.0.0.1:1883")
    monkeypatch.setitem(app.config, "FABLAB_HA_DISCOVERY", False)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["mosquitto-config", str(tmp_path / "off")]).exit_code == 0
    assert "homeassistant" not in (tmp_path / "off" / "acl").read_text()
    monkeypatch.setitem(app.config, "FABLAB_HA_DISCOVERY", True)
    result = runner.invoke(args=["mosquitto-config", str(tmp_path / "on")])
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "on" / "acl").read_text().splitlines()
    server = lines[lines.index("user fablab") + 1: lines.index("user bridge-a")]
    assert {"topic readwrite homeassistant/#", "topic readwrite fablab/ha/#"} <= set(server)


# --- the worker through a real Mosquitto that enforces the generated ACL ----------------------------


class Recorder:
    """A Home Assistant stand-in: subscribes to discovery and the server's state topics, keeps every message."""

    def __init__(self, port: int, prefix: str) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        ready = threading.Event()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"ha-{uuid.uuid4().hex[:8]}")
        self.c.username_pw_set("homeassistant", "ha-secret")
        self.c.on_connect = lambda c, u, f, rc, p=None: c.subscribe(
            [(f"{prefix}/#", 1), ("fablab/ha/#", 1), ("fablab/v1/bridge/+/status", 1)])
        self.c.on_subscribe = lambda *a: ready.set()
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        assert ready.wait(5), "recorder could not subscribe"

    def _on_message(self, c, u, m) -> None:
        with self.lock:
            self.messages.append((m.topic, m.payload, bool(m.retain)))

    def latest(self) -> dict[str, bytes]:
        with self.lock:
            return {t: p for t, p, _ in self.messages}

    def count(self, topic: str) -> int:
        with self.lock:
            return sum(1 for t, _, _ in self.messages if t == topic)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def acl_broker(app, app_ctx, make_machine, monkeypatch, tmp_path) -> Iterator[tuple[int, str]]:
    """Two machines, a bridge each, discovery on with a per-test prefix, and Mosquitto started with the
    files `fablab mosquitto-config` wrote (with the read-only Home Assistant user the recorder signs in as)."""
    prefix = f"hatest-{uuid.uuid4().hex[:6]}"
    make_machine("printer-1", name="Printer One", type_slug="3d_printer")
    make_machine("laser-1", name="Laser One", type_slug="laser_cutter")
    usage_service.add_bridge("bridge-a", ["printer-1"])
    usage_service.add_bridge("bridge-b", ["laser-1"])
    db.session.commit()
    monkeypatch.setitem(app.config, "FABLAB_MQTT_URL", "mqtt://fablab:server-secret@127.0.0.1:1883")
    monkeypatch.setitem(app.config, "FABLAB_HA_DISCOVERY", True)
    monkeypatch.setitem(app.config, "FABLAB_HA_PREFIX", prefix)
    monkeypatch.setitem(app.config, "FABLAB_HA_MQTT_USER", "homeassistant")
    monkeypatch.setitem(app.config, "FABLAB_HA_MQTT_PASSWORD", "ha-secret")
    conf_dir = tmp_path / "conf"
    result = app.test_cli_runner().invoke(args=["mosquitto-config", str(conf_dir)])
    assert result.exit_code == 0, result.output
    passwd, acl = conf_dir / "passwd", conf_dir / "acl"
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {passwd}\nacl_file {acl}\n"
                    f"user {getpass.getuser()}\nlog_dest stderr\n")
    proc = subprocess.Popen([find_mosquitto(), "-c", str(conf)], stderr=subprocess.DEVNULL)  # type: ignore[list-item]
    try:
        wait_for_port("127.0.0.1", port)
        yield port, prefix
    finally:
        proc.terminate()
        proc.wait(5)


@needs_mosquitto
def test_worker_publishes_updates_and_unpublishes_through_mosquitto(app, acl_broker, make_member) -> None:
    port, prefix = acl_broker
    recorder = Recorder(port, prefix)
    worker = MqttWorker(app, MqttSettings("127.0.0.1", port, "fablab", "server-secret"),
                        client_id=f"w-{uuid.uuid4().hex[:8]}", tick_seconds=0.3)
    thread = threading.Thread(target=worker.run, kwargs={"warm_up": False}, daemon=True)
    thread.start()
    try:
        printer_cfg = ha.config_topics(prefix, "printer-1")
        laser_cfg = ha.config_topics(prefix, "laser-1")
        wait_until(lambda: set(printer_cfg + laser_cfg) <= recorder.latest().keys(), what="10 configs")
        latest = recorder.latest()
        for topic in printer_cfg + laser_cfg:
            payload = json.loads(latest[topic])
            assert SCHEMA_KEYS <= payload.keys()
        assert json.loads(latest[printer_cfg[0]])["availability"][0]["topic"] == "fablab/v1/bridge/bridge-a/status"
        assert latest[ha.SERVER_STATUS_TOPIC] == b"online"
        state = wait_until(lambda: recorder.latest().get("fablab/ha/printer-1/state"), what="printer state")
        assert json.loads(state)["user"] is None

        # a state update: someone starts using the printer
        with app.app_context():
            from fablab.models import Machine

            ada = make_member("ada@example.org", name="Ada Lovelace")
            _open_session(db.session.get(Machine, db.session.query(Machine.id).filter_by(slug="printer-1")
                                         .scalar()), ada)
            pseudonym = ada.pseudonym
        wait_until(lambda: json.loads(recorder.latest()["fablab/ha/printer-1/state"])["user"] == pseudonym,
                   what="the current user")
        time.sleep(1.0)  # several more syncs: unchanged configs are not sent again
        assert all(recorder.count(t) == 1 for t in printer_cfg + laser_cfg), [recorder.count(t) for t in printer_cfg]

        # the laser is retired: its entities are removed (empty retained payloads)
        with app.app_context():
            from fablab.models import Machine

            laser = db.session.query(Machine).filter_by(slug="laser-1").one()
            laser.status = "retired"
            db.session.commit()
        wait_until(lambda: all(recorder.latest().get(t) == b"" for t in laser_cfg), what="laser unpublished")
        assert recorder.latest()["fablab/ha/laser-1/state"] == b""
        assert all(json.loads(recorder.latest()[t]) for t in printer_cfg)  # the printer stays
    finally:
        worker.stop()
        thread.join(10)
        recorder.close()

    # a Home Assistant connecting now finds the printer's retained configs and none for the laser,
    # and the worker's clean stop marked its sensors unavailable
    late = Recorder(port, prefix)
    try:
        wait_until(lambda: set(printer_cfg) <= late.latest().keys(), what="retained configs")
        time.sleep(0.3)
        with late.lock:
            assert all(retained for t, _, retained in late.messages if t in printer_cfg)
        assert json.loads(late.latest()["fablab/ha/printer-1/state"])["user"] == pseudonym
        assert not set(laser_cfg) & late.latest().keys()
        assert late.latest()[ha.SERVER_STATUS_TOPIC] == b"offline"
        # Home Assistant's account reads only: a forged bridge status is dropped by the broker
        late.c.publish("fablab/v1/bridge/bridge-a/status", b"forged", qos=1).wait_for_publish(5)
        time.sleep(0.5)
        assert b"forged" not in late.latest().values()
    finally:
        late.close()


def test_discovery_off_publishes_nothing(app) -> None:
    worker = MqttWorker(app, MqttSettings("127.0.0.1", 1), client_id="unused")
    assert worker.ha is None
