"""Home Assistant MQTT discovery: the retained config payloads that make each machine a device in Home
Assistant, and the server-side state they read. Pure: takes plain data, returns topics and JSON-ready
dicts; fablab/services/ha_discovery.py loads the data and publishes.

Schema (home-assistant.io, MQTT discovery): config topic `<prefix>/<component>/<node_id>/<object_id>/config`;
each payload has `name`, `unique_id`, `state_topic` (+ `value_template`), `availability` (a list of
{topic, payload_available, payload_not_available, value_template}), `device` {identifiers, name,
manufacturer, model} and `default_entity_id`. An empty retained payload on the config topic removes the
entity. Values the bridge already publishes (state, progress, in use) are read from its retained
`fablab/v1/machine/{m}/status`; only what the server knows (who uses it, when it is next free) goes on
`fablab/ha/{m}/state`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

STATE_PREFIX = "fablab/ha"
SERVER_STATUS_TOPIC = f"{STATE_PREFIX}/status"  # the worker's own availability (its Last Will)
ONLINE, OFFLINE = "online", "offline"
IN_USE_STATES = ("busy", "printing", "paused")
NOBODY = "nobody"

# key → (component, entity name, reads the server state topic rather than the bridge's status)
ENTITIES: dict[str, tuple[str, str, bool]] = {
    "state": ("sensor", "State", False),
    "progress": ("sensor", "Job progress", False),
    "user": ("sensor", "Current user", True),
    "next_free": ("sensor", "Next free", True),
    "in_use": ("binary_sensor", "In use", False),
}


@dataclass(frozen=True)
class MachineInfo:
    slug: str
    name: str
    model: str  # the machine type's name
    bridges: tuple[str, ...] = ()  # ids of the bridges reporting for it (their status is its availability)


@dataclass(frozen=True)
class ServerState:
    user: str | None  # a pseudonym ("Member 1234") unless the lab shows names
    next_free: datetime | None
    status: str  # available, out_of_order


def ident(slug: str) -> str:
    """A Home Assistant id part (node_id, object_id: [a-zA-Z0-9_-]) made from a machine slug."""
    return "fablab_" + re.sub(r"[^a-zA-Z0-9_-]", "_", slug)


def entity_slug(text: str) -> str:
    """An entity id's object part: lowercase letters, digits and underscores only."""
    return re.sub(r"[^a-z0-9_]", "_", text.lower())


def config_topic(prefix: str, slug: str, key: str) -> str:
    component = ENTITIES[key][0]
    return f"{prefix}/{component}/{ident(slug)}/{key}/config"


def config_topics(prefix: str, slug: str) -> list[str]:
    return [config_topic(prefix, slug, key) for key in ENTITIES]


def state_topic(slug: str) -> str:
    return f"{STATE_PREFIX}/{slug}/state"


def bridge_status_topic(bridge_id: str) -> str:
    return f"fablab/v1/bridge/{bridge_id}/status"


def machine_status_topic(slug: str) -> str:
    return f"fablab/v1/machine/{slug}/status"


def _bridge_availability(bridges: tuple[str, ...]) -> list[dict[str, str]]:
    # The bridge's status (and Last Will) is JSON {"online": true|false, ...}: the template maps it to the
    # payload_available / payload_not_available values.
    return [{"topic": bridge_status_topic(b), "payload_available": ONLINE, "payload_not_available": OFFLINE,
             "value_template": "{{ 'online' if value_json.online else 'offline' }}"} for b in bridges]


def _server_availability() -> list[dict[str, str]]:
    return [{"topic": SERVER_STATUS_TOPIC, "payload_available": ONLINE, "payload_not_available": OFFLINE}]


_TEMPLATES = {
    "state": "{{ value_json.state }}",
    "progress": "{{ ((value_json.job.progress or 0) * 100) | round(1) if value_json.job is defined "
                "and value_json.job else 0 }}",
    "in_use": "{{ 'ON' if value_json.state in " + str(list(IN_USE_STATES)) + " else 'OFF' }}",
    "user": "{{ value_json.user or '" + NOBODY + "' }}",
    "next_free": "{{ value_json.next_free or 'None' }}",  # "None" is Home Assistant's "unknown"
}


def entity_config(m: MachineInfo, key: str, lab_name: str, url: str | None = None) -> dict[str, Any]:
    component, label, server_side = ENTITIES[key]
    uid = f"{ident(m.slug)}_{key}"
    device: dict[str, Any] = {"identifiers": [ident(m.slug)], "name": m.name, "manufacturer": lab_name,
                              "model": m.model}
    if url:
        device["configuration_url"] = url
    out: dict[str, Any] = {
        "name": label,
        "unique_id": uid,
        "default_entity_id": f"{component}.{entity_slug(uid)}",  # replaces object_id (Home Assistant 2025.10)
        "state_topic": state_topic(m.slug) if server_side else machine_status_topic(m.slug),
        "value_template": _TEMPLATES[key],
        "device": device,
        "origin": {"name": "fablab"},
        "qos": 1,
    }
    availability = _server_availability() if server_side else _bridge_availability(m.bridges)
    if availability:
        out["availability"] = availability
        out["availability_mode"] = "all"
    if key == "progress":
        out |= {"unit_of_measurement": "%", "state_class": "measurement", "icon": "mdi:progress-clock"}
    elif key == "next_free":
        out["device_class"] = "timestamp"
    elif key == "in_use":
        out |= {"payload_on": "ON", "payload_off": "OFF", "device_class": "running"}
    elif key == "user":
        out["icon"] = "mdi:account"
    return out


def machine_configs(m: MachineInfo, prefix: str, lab_name: str, url: str | None = None) -> dict[str, dict[str, Any]]:
    """config topic → payload, for every entity of one machine."""
    return {config_topic(prefix, m.slug, key): entity_config(m, key, lab_name, url) for key in ENTITIES}


def state_payload(s: ServerState) -> dict[str, Any]:
    return {"user": s.user, "status": s.status,
            "next_free": s.next_free.isoformat(timespec="seconds") if s.next_free else None}


def encode(payload: dict[str, Any]) -> bytes:
    """Stable bytes (sorted keys), so the same content always hashes the same."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def plan(published: dict[str, str], wanted: dict[str, bytes],
         forced: frozenset[str] | set[str] = frozenset()) -> tuple[dict[str, bytes], list[str]]:
    """What to publish (topics whose content changed, or forced) and which published topics to clear
    (published before, not wanted any more)."""
    send = {t: data for t, data in wanted.items() if t in forced or published.get(t) != digest(data)}
    clear = sorted(t for t in published if t not in wanted)
    return send, clear
