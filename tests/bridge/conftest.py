"""Fixtures for the bridge tests: a private Mosquitto, an MQTT recorder, simulators and bridge factories."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from fablab_bridge.app import Bridge
from fablab_bridge.config import parse_config

from devices import events
from devices.simulators.grbl_sim import GrblSimulator
from devices.simulators.marlin_sim import MarlinSimulator
from tests.support.broker import Broker, start_broker

_ids = itertools.count(1)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory):
    """One Mosquitto for the session; tests that stop it use ``private_broker`` instead."""
    b = start_broker(tmp_path_factory.mktemp("broker"))
    yield b
    b.close()


@pytest.fixture
def private_broker(tmp_path: Path):
    b = start_broker(tmp_path / "broker")
    yield b
    b.close()


@pytest.fixture
def uid() -> Callable[[str], str]:
    """Unique ids per test, so retained messages on the shared broker never leak between tests."""
    n = next(_ids)
    return lambda name: f"{name}-{n}"


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Recorder:
    """Subscribes to everything below ``fablab/v1/`` and keeps decoded messages."""

    def __init__(self, broker: Broker, client_id: str | None = None, persistent: bool = False) -> None:
        self.messages: list[tuple[float, str, events.Message]] = []
        self.raw: list[tuple[str, bytes]] = []
        self.invalid: list[tuple[str, str]] = []
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or "", clean_session=not persistent
        )
        self.client.reconnect_delay_set(1, 1)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe("fablab/v1/#", qos=1)
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert self._subscribed.wait(5), "recorder could not subscribe"

    def _on_message(self, client, userdata, message) -> None:  # noqa: ANN001
        self.raw.append((message.topic, message.payload))
        try:
            msg = events.decode(message.topic, message.payload)
        except events.ContractError as exc:
            self.invalid.append((message.topic, exc.reason))  # a dead letter, kept for assertions
            return
        self.messages.append((time.monotonic(), message.topic, msg))

    def of(self, cls: type, machine: str | None = None) -> list:
        return [
            m for _, _, m in list(self.messages)
            if isinstance(m, cls) and (machine is None or getattr(m, "machine", None) == machine)
        ]

    def events(self, machine: str) -> list[events.MachineEvent]:
        """Events deduplicated on ``msg_id`` as the contract tells consumers to: QoS 1 is at-least-once,
        and a broker restart may redeliver a message whose PUBACK it had not persisted."""
        seen: set[str] = set()
        out = []
        for e in self.of(events.MachineEvent, machine):
            if e.msg_id not in seen:
                seen.add(e.msg_id)
                out.append(e)
        return out

    def event_types(self, machine: str) -> list[str]:
        return [e.type for e in self.events(machine)]

    def states(self, machine: str) -> list[str]:
        return [s.state for s in self.of(events.MachineStatus, machine)]

    def last_state(self, machine: str) -> str | None:
        states = self.states(machine)
        return states[-1] if states else None

    def wait_state(self, machine: str, state: str, timeout: float = 5.0) -> None:
        wait_until(lambda: self.last_state(machine) == state, timeout, f"{machine} state {state} "
                   f"(states so far {self.states(machine)})")

    def wait_events(self, machine: str, types: list[str], timeout: float = 5.0) -> list[events.MachineEvent]:
        wait_until(lambda: self.event_types(machine)[: len(types)] == types and len(self.events(machine)) >= len(types),
                   timeout, f"events {types} (got {self.event_types(machine)})")
        return self.events(machine)

    def publish(self, msg: events.Message) -> None:
        self.client.publish(msg.topic(), events.encode(msg), qos=1).wait_for_publish(2)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        # paho 2.2 leaves its wake-up socket pair open after loop_stop (and to the garbage collector): close it.
        self.client._reset_sockets()


@pytest.fixture
def recorder(broker: Broker):
    made: list[Recorder] = []

    def make(b: Broker | None = None, **kw: Any) -> Recorder:
        r = Recorder(b or broker, **kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def bridge_config(broker: Broker, state_dir: Path, bridge_id: str, machines: list[dict], **mqtt: Any):
    """A config dict with fast intervals, so tests do not wait for production timings."""
    fast = {"poll_interval": 0.2, "telemetry_interval": 0.3, "boot_wait": 0.5, "ack_timeout": 1.0,
            "reconnect_min": 0.1, "reconnect_max": 0.3, "auth_timeout": 1.0}
    return {
        "bridge": {"id": bridge_id, "state_dir": str(state_dir), "log_level": "DEBUG"},
        "mqtt": {"host": broker.host, "port": broker.port, "reconnect_min": 1, "reconnect_max": 1} | mqtt,
        "machine": [fast | m for m in machines],
    }


@pytest.fixture
def make_bridge(tmp_path: Path, broker: Broker):
    """``make_bridge(machines, broker=..., state_dir=..., bridge_id=...) -> Bridge`` (started)."""
    made: list[Bridge] = []

    def make(machines: list[dict], *, b: Broker | None = None, state_dir: Path | None = None,
             bridge_id: str = "bridge", **mqtt: Any) -> Bridge:
        raw = bridge_config(b or broker, state_dir or tmp_path / "state", bridge_id, machines, **mqtt)
        bridge = Bridge(parse_config(raw)).start()
        made.append(bridge)
        return bridge

    yield make
    for bridge in made:
        if not bridge._stopped.is_set():
            bridge.stop()


@pytest.fixture
def marlin_sim(tmp_path: Path):
    sims: list[MarlinSimulator] = []

    def make(**kw: Any) -> MarlinSimulator:
        opts = {"heat_rate": 20.0, "print_rate": 4000.0, "files": {"benchy.gcode": 4000}} | kw
        sim = MarlinSimulator(str(tmp_path / f"marlin{len(sims)}"), **opts)
        sim.start()
        sims.append(sim)
        return sim

    yield make
    for sim in sims:
        sim.stop()


@pytest.fixture
def grbl_sim(tmp_path: Path):
    sims: list[GrblSimulator] = []

    def make(**kw: Any) -> GrblSimulator:
        sim = GrblSimulator(str(tmp_path / f"grbl{len(sims)}"), **({"move_time": 0.05} | kw))
        sim.start()
        sims.append(sim)
        return sim

    yield make
    for sim in sims:
        sim.stop()


def payloads(recorder: Recorder, topic_suffix: str) -> list[dict]:
    return [json.loads(p) for t, p in recorder.raw if t.endswith(topic_suffix)]
