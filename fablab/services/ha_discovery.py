"""Home Assistant MQTT discovery, published by the worker (FABLAB_HA_DISCOVERY=1) on its own MQTT
connection: retained configs per machine, the server-side state (`fablab/ha/{m}/state`, on change and every
minute), and an empty retained config for machines that are retired or gone. Republishes only what changed
(a hash per topic); after a reconnect everything goes out once more.

The payloads are built in fablab/domain/ha_discovery.py; this module loads the data and decides what to send.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from flask import Flask, current_app
from sqlalchemy import select

from ..domain import ha_discovery as ha
from ..extensions import db
from ..models import Booking, Machine
from ..models.members import Member
from ..models.usage import Bridge, UsageSession
from . import bookings as booking_service

log = logging.getLogger("fablab.worker.ha")

Send = Callable[[str, bytes, bool], None]  # topic, payload, retain
STATE_EVERY = timedelta(minutes=1)


def acl_rules(prefix: str) -> list[str]:
    """What the worker's MQTT user must be allowed to write for discovery (fablab mosquitto-config)."""
    return [f"topic readwrite {prefix}/#", f"topic readwrite {ha.STATE_PREFIX}/#"]


def add_acl_rules(acl_text: str, server_user: str, prefix: str) -> str:
    """The ACL with the discovery rules added to the server user's block (rules after a `user` line belong to
    that user, so they go right below it, not at the end)."""
    lines = acl_text.splitlines()
    at = lines.index(f"user {server_user}") + 1
    return "\n".join(lines[:at] + acl_rules(prefix) + lines[at:]) + "\n"


def reader_block(user: str, prefix: str) -> list[str]:
    """Home Assistant's account: reads discovery, the server's state and the machines' status, writes nothing
    (its birth message `<prefix>/status` aside)."""
    return [f"user {user}", f"topic read {prefix}/#", f"topic write {prefix}/status",
            f"topic read {ha.STATE_PREFIX}/#", "topic read fablab/v1/#", ""]


def _label(member: Member | None, show_names: bool) -> str | None:
    if member is None:
        return None
    return member.name if show_names else member.pseudonym


def machine_infos(machines: list[Machine]) -> dict[str, ha.MachineInfo]:
    bridges: dict[int, list[str]] = {}
    for b in db.session.scalars(select(Bridge).order_by(Bridge.bridge_id)):
        for m in b.machines:
            bridges.setdefault(m.id, []).append(b.bridge_id)
    return {m.slug: ha.MachineInfo(m.slug, m.name, m.machine_type.name, tuple(bridges.get(m.id, ())))
            for m in machines}


def server_states(machines: list[Machine], now: datetime, show_names: bool) -> dict[str, ha.ServerState]:
    """Who uses each machine now (the open usage session's member, else the checked-in booking's) and when
    it is next free to book."""
    ids = [m.id for m in machines]
    users: dict[int, Member] = {}
    for b in db.session.scalars(select(Booking).where(
            Booking.machine_id.in_(ids), Booking.status == "checked_in", Booking.start_at <= now,
            Booking.end_at > now)):
        users[b.machine_id] = b.member
    for s in db.session.scalars(select(UsageSession).where(
            UsageSession.machine_id.in_(ids), UsageSession.open.is_(True), UsageSession.member_id.is_not(None))):
        member = db.session.get(Member, s.member_id)
        if member is not None:
            users[s.machine_id] = member
    out = {}
    for m in machines:
        try:
            free = booking_service.next_free(m, now)
        except Exception:  # noqa: BLE001 - e.g. a stored policy it cannot read: the sensor shows unknown
            log.exception("next free time of %s", m.slug)
            free = None
        out[m.slug] = ha.ServerState(_label(users.get(m.id), show_names), free.start if free else None, m.status)
    return out


def wanted(now: datetime) -> tuple[dict[str, bytes], list[str]]:
    """Every retained payload discovery wants now (topic → bytes), and the config and state topics of
    retired machines (to clear). Needs an app context."""
    cfg = current_app.config
    prefix, lab, base = cfg["FABLAB_HA_PREFIX"], cfg["FABLAB_LAB_NAME"], cfg["FABLAB_BASE_URL"]
    machines = list(db.session.scalars(select(Machine).order_by(Machine.slug)))
    live = [m for m in machines if m.status != "retired"]
    out: dict[str, bytes] = {}
    for slug, info in machine_infos(live).items():
        for topic, payload in ha.machine_configs(info, prefix, lab, f"{base}/machines/{slug}").items():
            out[topic] = ha.encode(payload)
    for slug, state in server_states(live, now, cfg["FABLAB_SHOW_MEMBER_NAMES"]).items():
        out[ha.state_topic(slug)] = ha.encode(ha.state_payload(state))
    retired = [t for m in machines if m.status == "retired"
               for t in [*ha.config_topics(prefix, m.slug), ha.state_topic(m.slug)]]
    return out, retired


class DiscoveryPublisher:
    """Keeps Home Assistant's view in step with the lab. `send` publishes one retained message on the
    worker's connection; `sync` is called from the worker's loop (it opens its own app context)."""

    def __init__(self, app: Flask, send: Send) -> None:
        self.app = app
        self.send = send
        self.published: dict[str, str] = {}  # topic → digest of what we last sent
        self.cleared: set[str] = set()  # topics emptied in this connection
        self.states_at: datetime | None = None
        self.lock = threading.Lock()  # reset() comes from the MQTT network thread, sync() from the loop

    def reset(self) -> None:
        """After a (re)connect: send everything again once (the broker may have lost it)."""
        with self.lock:
            self.published.clear()
            self.cleared.clear()
            self.states_at = None

    def sync(self, now: datetime) -> tuple[int, int]:
        """Publish what changed and clear what went away; returns (sent, cleared)."""
        with self.app.app_context():
            try:
                want, retired = wanted(now)
            finally:
                db.session.remove()
        with self.lock:
            forced: set[str] = set()
            if self.states_at is None or now - self.states_at >= STATE_EVERY:
                forced = {t for t in want if t.startswith(ha.STATE_PREFIX + "/")}
                self.states_at = now
            send, clear = ha.plan(self.published, want, forced)
            clear += [t for t in retired if t not in self.cleared and t not in clear]
            for topic, data in send.items():
                self.send(topic, data, True)
                self.published[topic] = ha.digest(data)
                self.cleared.discard(topic)
            for topic in clear:
                self.send(topic, b"", True)  # an empty retained payload removes the entity (and its state)
                self.published.pop(topic, None)
                self.cleared.add(topic)
        if send or clear:
            log.info("home assistant discovery: %d sent, %d cleared", len(send), len(clear))
        return len(send), len(clear)
