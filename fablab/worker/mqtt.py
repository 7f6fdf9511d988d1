"""The MQTT side of the worker: a persistent session (fixed client id, clean start off, QoS 1, manual
acknowledgements) that feeds an `Ingestor` in batches and acknowledges each message only after its batch
is committed, so a crash at any point loses nothing and doubles nothing."""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from flask import Flask

from devices import events as ev

from ..domain import ha_discovery as ha_domain
from ..services.ha_discovery import DiscoveryPublisher
from .ingest import Incoming, Ingestor

log = logging.getLogger("fablab.worker")

@dataclass
class MqttSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @classmethod
    def from_url(cls, url: str) -> MqttSettings:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ValueError(f"FABLAB_MQTT_URL must be mqtt://[user:pass@]host[:port], got {url!r}")
        tls = parts.scheme in ("mqtts", "ssl")
        return cls(parts.hostname or "127.0.0.1", parts.port or (8883 if tls else 1883),
                   unquote(parts.username) if parts.username else None,
                   unquote(parts.password) if parts.password else None, tls)


class MqttWorker:
    """A persistent MQTT session (fixed client id, clean start off, QoS 1, manual acks) feeding an
    Ingestor in batches. Several workers share the load with `shared=True` ($share/fablab/...)."""

    def __init__(self, app: Flask, settings: MqttSettings, client_id: str = "fablab-worker",
                 shared: bool = False, batch_max: int = 2000, tick_seconds: float = 15.0) -> None:
        import paho.mqtt.client as mqtt

        self.settings = settings
        self.shared = shared
        self.batch_max = batch_max
        self.tick_seconds = tick_seconds
        self.queue: queue.Queue[Incoming] = queue.Queue()
        self.connected = threading.Event()
        self.stop_event = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.manual_ack_set(True)
        if settings.username:
            self.client.username_pw_set(settings.username, settings.password)
        if settings.tls:
            self.client.tls_set()
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect
        self.client.reconnect_delay_set(1, 30)
        self.ingestor = Ingestor(app, publish=self._publish)
        self.ha = self._ha_publisher(app)
        self.handling_since: datetime | None = None  # received time of the batch being stored (readiness)

    @property
    def topic(self) -> str:
        return f"$share/fablab/{ev.PREFIX}/#" if self.shared else f"{ev.PREFIX}/#"

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any = None) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            return
        from paho.mqtt.subscribeoptions import SubscribeOptions

        # noLocal: our own auth responses do not come back (not allowed on shared subscriptions).
        client.subscribe(self.topic, options=SubscribeOptions(qos=1, noLocal=not self.shared))
        if self.ha is not None:
            self.ha.reset()  # everything once more on this connection
            client.publish(ha_domain.SERVER_STATUS_TOPIC, ha_domain.ONLINE, qos=1, retain=True)
        self.connected.set()
        log.info("connected to %s:%s, subscribed to %s", self.settings.host, self.settings.port, self.topic)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any = None) -> None:
        self.connected.clear()
        if not self.stop_event.is_set():
            log.warning("disconnected from the broker (%s); reconnecting", reason)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        self.queue.put(Incoming(msg.topic, msg.payload, msg.mid, msg.qos))

    def _publish(self, message: ev.Message) -> None:
        self.client.publish(message.topic(), ev.encode(message), qos=message.QOS, retain=message.RETAIN)

    def _ha_publisher(self, app: Flask) -> DiscoveryPublisher | None:
        """Home Assistant discovery on this same connection; the Last Will marks the server-side sensors
        unavailable when the worker goes away."""
        if not app.config.get("FABLAB_HA_DISCOVERY"):
            return None
        self.client.will_set(ha_domain.SERVER_STATUS_TOPIC, ha_domain.OFFLINE, qos=1, retain=True)
        return DiscoveryPublisher(app, self._send_retained)

    def _send_retained(self, topic: str, data: bytes, retain: bool) -> None:
        self.client.publish(topic, data, qos=1, retain=retain)

    def start(self) -> None:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 7 * 24 * 3600  # the broker keeps our queue for a week of downtime
        self.client.connect_async(self.settings.host, self.settings.port, keepalive=30, clean_start=False,
                                  properties=props)
        self.client.loop_start()

    def run(self, warm_up: bool = True) -> None:
        """Process until stop(); call from the main thread of `fablab worker`."""
        if warm_up:
            n = self.ingestor.warm_up()
            log.info("sessionizer rebuilt from %d stored observations", n)
        self.start()
        next_tick = time.monotonic()
        while not self.stop_event.is_set():
            batch = self._drain(timeout=0.5)
            if batch:
                self._handle(batch)
            if time.monotonic() >= next_tick:
                self.ingestor.tick()
                self._sync_ha()
                next_tick = time.monotonic() + self.tick_seconds
        if self.ha is not None:  # a clean disconnect sends no Last Will
            self.client.publish(ha_domain.SERVER_STATUS_TOPIC, ha_domain.OFFLINE, qos=1, retain=True)
        self.client.disconnect()
        self.client.loop_stop()
        # paho 2.2 leaves its wake-up socket pair open after loop_stop (and to the garbage collector): close it.
        self.client._reset_sockets()

    def _sync_ha(self) -> None:
        if self.ha is None or not self.connected.is_set():
            return  # sent in full after the next connect
        try:
            self.ha.sync(datetime.now(UTC))
        except Exception:  # noqa: BLE001 - discovery must never stop the ingest
            log.exception("home assistant discovery failed; retrying next tick")

    def _drain(self, timeout: float) -> list[Incoming]:
        try:
            first = self.queue.get(timeout=timeout)
        except queue.Empty:
            return []
        batch = [first]
        while len(batch) < self.batch_max:
            try:
                batch.append(self.queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _handle(self, batch: list[Incoming]) -> None:
        """Store a batch, then acknowledge it. While the database is away the batch waits (never acked, so
        the broker keeps it); a batch that keeps failing while the database answers is taken apart so
        that one bad message cannot hold back the others."""
        self.handling_since = batch[0].received_at
        for attempt in range(1, 1_000_000):
            try:
                self.ingestor.process(batch, isolate=attempt > 3 and self.ingestor.database_ok())
                break
            except Exception:  # noqa: BLE001 - e.g. the database is away: keep the batch, retry, never ack
                delay = min(30.0, 0.25 * 2 ** min(attempt, 7))
                log.exception("could not store a batch of %d messages; retrying in %.1f s", len(batch), delay)
                if self.stop_event.wait(delay):
                    return  # unacknowledged: the broker redelivers them to the next worker
        for item in batch:
            if item.qos > 0:
                self.client.ack(item.mid, item.qos)
        self.handling_since = None

    def backlog_seconds(self, now: datetime) -> float:
        """How long the oldest received message not yet committed has waited (0: nothing waits)."""
        with self.queue.mutex:
            queued = self.queue.queue[0].received_at if self.queue.queue else None
        oldest = min((t for t in (self.handling_since, queued) if t is not None), default=None)
        return max(0.0, (now - oldest).total_seconds()) if oldest else 0.0

    def stop(self) -> None:
        self.stop_event.set()

