"""The bridge's MQTT connection (paho-mqtt 2.x): Last Will, reconnects, subscriptions and the outbox sender.

Events go through the SQLite outbox and are sent one at a time in order; a row is deleted when its PUBACK
arrives. Status (retained) and telemetry (QoS 0) are published directly: only their latest value matters.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections import OrderedDict
from collections.abc import Callable

import paho.mqtt.client as mqtt

from devices import events
from fablab_bridge.config import MqttConfig
from fablab_bridge.store import Store

log = logging.getLogger(__name__)
Handler = Callable[[str, bytes], None]


class MqttLink:
    def __init__(self, cfg: MqttConfig, bridge_id: str, store: Store) -> None:
        self.cfg = cfg
        self.bridge_id = bridge_id
        self.store = store
        self.connected = threading.Event()
        self._handlers: list[tuple[str, Handler]] = []
        self._on_connect_hooks: list[Callable[[], None]] = []
        self._acked: OrderedDict[int, None] = OrderedDict()  # recently acknowledged mids
        self._ack_cond = threading.Condition()
        self._stop = threading.Event()
        self._sender: threading.Thread | None = None
        self.delivered = 0

        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=cfg.client_id or f"fablab-bridge-{bridge_id}",
            clean_session=True,
            protocol=mqtt.MQTTv311,
        )
        self.client = client
        self._set_will()
        if cfg.username:
            client.username_pw_set(cfg.username, cfg.password)
        if cfg.tls or cfg.ca_file:
            client.tls_set(
                ca_certs=cfg.ca_file, certfile=cfg.cert_file, keyfile=cfg.key_file, cert_reqs=ssl.CERT_REQUIRED
            )
            client.tls_insecure_set(cfg.tls_insecure)
        client.reconnect_delay_set(min_delay=max(1, int(cfg.reconnect_min)), max_delay=int(cfg.reconnect_max))
        client.max_inflight_messages_set(20)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        self.client = client

    # -------------------------------------------------------------------------------- wiring
    def subscribe(self, topic: str, handler: Handler) -> None:
        """Register before ``start``; (re)subscribed on every connect."""
        self._handlers.append((topic, handler))

    def on_connected(self, hook: Callable[[], None]) -> None:
        self._on_connect_hooks.append(hook)

    def start(self) -> None:
        self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive)
        self.client.loop_start()
        self._sender = threading.Thread(target=self._send_outbox, name="outbox-sender", daemon=True)
        self._sender.start()

    def stop(self, graceful: bool = True) -> None:
        """Graceful: publish ``online: false`` before disconnecting (otherwise the Will does it)."""
        self._stop.set()
        self.store.changed.set()
        with self._ack_cond:
            self._ack_cond.notify_all()
        if self._sender is not None:
            self._sender.join(timeout=3)
        if graceful and self.connected.is_set():
            msg = events.BridgeStatus(src=self.bridge_id, bridge_id=self.bridge_id, online=False)
            info = self.client.publish(msg.topic(), events.encode(msg), qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=2)
            except (RuntimeError, ValueError):
                pass
            self.client.disconnect()
        self.client.loop_stop()
        # paho 2.2 leaves its wake-up socket pair open after loop_stop (and to the garbage collector): close it.
        self.client._reset_sockets()

    # -------------------------------------------------------------------------------- publishing
    def publish_now(self, msg: events.Message) -> bool:
        """Status/telemetry/auth requests: sent only while connected (False otherwise)."""
        if not self.connected.is_set():
            return False
        try:
            payload = events.encode(msg)
        except (ValueError, TypeError) as exc:  # events.ContractError is a ValueError
            log.error("%s not sent, the contract refuses it: %s", type(msg).__name__, getattr(exc, "reason", exc))
            return False
        info = self.client.publish(msg.topic(), payload, qos=msg.QOS, retain=msg.RETAIN)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    def publish_raw(self, topic: str, payload: bytes, qos: int = 1) -> bool:
        if not self.connected.is_set():
            return False
        return self.client.publish(topic, payload, qos=qos).rc == mqtt.MQTT_ERR_SUCCESS

    def _send_outbox(self) -> None:
        while not self._stop.is_set():
            if not self.connected.wait(0.2):
                continue
            row = self.store.head_or_wait(0.5)
            if row is None:
                continue
            # Never hold _ack_cond while calling paho: paho calls on_publish holding its own message
            # mutex, so the opposite order would deadlock.
            info = self.client.publish(row.topic, row.payload, qos=1)
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                log.warning("publish of outbox row %s failed: %s", row.id, mqtt.error_string(info.rc))
                self._stop.wait(0.5)
                continue
            # paho keeps an unacknowledged QoS 1 message and resends it after a reconnect, so we wait
            # for this mid rather than publishing the row again (which would duplicate it).
            with self._ack_cond:
                while info.mid not in self._acked and not self._stop.is_set():
                    self._ack_cond.wait(0.5)
                if info.mid not in self._acked:
                    return
                del self._acked[info.mid]
            self.store.delete(row.id)
            self.delivered += 1

    # -------------------------------------------------------------------------------- callbacks
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001
        if reason_code.is_failure:
            log.warning("MQTT connect refused: %s", reason_code)
            return
        log.info("connected to MQTT %s:%s", self.cfg.host, self.cfg.port)
        msg = events.BridgeStatus(src=self.bridge_id, bridge_id=self.bridge_id, online=True)
        client.publish(msg.topic(), events.encode(msg), qos=1, retain=True)
        for topic in {t for t, _ in self._handlers}:
            client.subscribe(topic, qos=1)
        self.connected.set()
        for hook in self._on_connect_hooks:
            try:
                hook()
            except Exception:  # a broken hook must not kill the network thread
                log.exception("on-connect hook failed")

    def _set_will(self) -> None:
        """A fresh Last Will (new msg_id and time) for the next connection: the server stores each message id
        once, so a will reused after a reconnect would be dropped as a duplicate and the crash go unseen."""
        will = events.BridgeStatus(src=self.bridge_id, bridge_id=self.bridge_id, online=False)
        self.client.will_set(will.topic(), events.encode(will), qos=1, retain=True)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001
        if self.connected.is_set():
            (log.info if self._stop.is_set() else log.warning)("MQTT disconnected: %s", reason_code)
        self.connected.clear()
        self._set_will()  # paho reconnects with whatever will is set now

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:  # noqa: ANN001
        with self._ack_cond:
            self._acked[mid] = None
            while len(self._acked) > 1000:  # acks of status messages nobody waits for
                self._acked.popitem(last=False)
            self._ack_cond.notify_all()

    def _on_message(self, client, userdata, message) -> None:  # noqa: ANN001
        for pattern, handler in self._handlers:
            if mqtt.topic_matches_sub(pattern, message.topic):
                try:
                    handler(message.topic, message.payload)
                except Exception:
                    log.exception("handler for %s failed", message.topic)
