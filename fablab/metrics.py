"""Prometheus metrics: the definitions, the few calls that move them, and one scrape's exposition.

Counters and histograms live in the process that observes them (web workers, the ingest worker). Under
gunicorn each worker is its own process: with `PROMETHEUS_MULTIPROC_DIR` set (before anything imports
prometheus_client) every process writes its values to files there and a scrape of any worker sums them
(deploy/gunicorn.conf.py empties the folder at start and marks exited workers). Gauges that describe the
lab (bridges online, machines by state, mail queue, waitlist) are not kept anywhere: `LabCollector` counts
them in the database at scrape time, so they are right whichever worker answers.

Labels stay bounded: a route is the URL rule (`/machines/<slug>`), never the path; a refusal is its rule
code; methods outside the usual ones are "other".
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST

HTTP_REQUESTS = Counter("fablab_http_requests", "HTTP requests answered, by route (URL rule) and status.",
                        ["method", "route", "status"])
HTTP_LATENCY = Histogram("fablab_http_request_duration_seconds", "Time to answer an HTTP request, by route.",
                         ["method", "route"],
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
BOOKINGS_CREATED = Counter("fablab_bookings_created", "Bookings created (the booking.created event).")
BOOKINGS_REFUSED = Counter("fablab_bookings_refused", "Booking requests refused, by the main rule's code.",
                           ["code"])
INGEST_MESSAGES = Counter("fablab_ingest_messages", "MQTT messages taken by the ingest, by outcome "
                          "(stored, duplicate, dead_letter).", ["outcome"])
INGEST_BATCH = Histogram("fablab_ingest_batch_size", "Messages per ingest batch.",
                         buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000))
INGEST_COMMIT = Histogram("fablab_ingest_commit_seconds", "Time to commit one ingest transaction.",
                          buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))
INGEST_LAG = Gauge("fablab_ingest_lag_seconds", "Commit time minus the event time of the newest message in "
                   "the last committed batch.", multiprocess_mode="mostrecent")
INGEST_LAG_SECONDS = Histogram("fablab_ingest_event_lag_seconds", "Commit time minus event time, per batch "
                               "(its newest message).",
                               buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600))
INGEST_LAST_COMMIT = Gauge("fablab_ingest_last_commit_timestamp_seconds", "When the ingest last committed "
                           "messages (Unix time).", multiprocess_mode="max")

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    method = method if method in _METHODS else "other"
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_LATENCY.labels(method, route).observe(seconds)


def booking_refused(code: str) -> None:
    BOOKINGS_REFUSED.labels(code[:40]).inc()


def on_lab_event(event: Any) -> None:
    """A lab_events listener (wired in fablab/wiring.py). Counts in the publisher's transaction: a booking
    rolled back after its event was published is still counted (rare: the event comes last)."""
    if event.type == "booking.created":
        BOOKINGS_CREATED.inc()


def ingest_processed(batch_size: int, stored: int, duplicates: int, dead: int) -> None:
    INGEST_BATCH.observe(batch_size)
    for outcome, n in (("stored", stored), ("duplicate", duplicates), ("dead_letter", dead)):
        if n:
            INGEST_MESSAGES.labels(outcome).inc(n)


def ingest_committed(seconds: float, newest_event: datetime | None, now: datetime | None = None) -> None:
    """One ingest transaction committed in `seconds`; `newest_event`: the event time of its newest stored
    message (None: it stored none, the lag is left as it was)."""
    INGEST_COMMIT.observe(seconds)
    now = now or datetime.now(UTC)
    INGEST_LAST_COMMIT.set(now.timestamp())
    if newest_event is not None:
        lag = max(0.0, (now - newest_event).total_seconds())
        INGEST_LAG.set(lag)
        INGEST_LAG_SECONDS.observe(lag)


# --- the lab as it is now, counted at scrape time ------------------------------------------------------


class LabCollector:
    """Gauges read from the database on each scrape (small tables or indexed counts). Needs an app context.
    A database that does not answer gives `fablab_database_up 0` instead of failing the scrape."""

    def describe(self) -> list[Metric]:
        return []  # collected on demand only: registering must not query the database

    def collect(self) -> Iterator[Metric]:
        from sqlalchemy import func, select

        from .extensions import db
        from .models import Machine
        from .models.notifications import OutboxMail
        from .models.scheduling import EntryStatus, OfferStatus, WaitlistEntry, WaitlistOffer
        from .models.usage import Bridge, DeadLetter

        up = GaugeMetricFamily("fablab_database_up", "1 when the scrape could read the database.")
        families: list[Metric] = []
        try:
            s = db.session
            bridges = GaugeMetricFamily("fablab_bridges", "Registered bridges by what they last said "
                                        "(online, offline, unknown).", labels=["state"])
            counts = {"online": 0, "offline": 0, "unknown": 0}
            for said, n in s.execute(select(Bridge.online, func.count()).group_by(Bridge.online)):
                counts["unknown" if said is None else "online" if said else "offline"] += n
            for bridge_state, n in counts.items():
                bridges.add_metric([bridge_state], n)
            online = GaugeMetricFamily("fablab_bridges_online", "Bridges whose last status said online.",
                                       value=counts["online"])
            machines = GaugeMetricFamily("fablab_machines", "Machines by live state (from MQTT) and status.",
                                         labels=["state", "status"])
            for state, status, n in s.execute(select(Machine.live_state, Machine.status, func.count())
                                              .group_by(Machine.live_state, Machine.status)):
                machines.add_metric([(state or "unknown")[:20], status], n)
            mail = GaugeMetricFamily("fablab_outbox_mails", "Mails in the outbox still to send (pending) or "
                                     "given up on (failed).", labels=["status"])
            mails = dict.fromkeys(("pending", "failed"), 0)
            mails.update(s.execute(select(OutboxMail.status, func.count())
                                   .where(OutboxMail.status.in_(tuple(mails))).group_by(OutboxMail.status)).all())
            for status, n in mails.items():
                mail.add_metric([status], n)
            depth = GaugeMetricFamily("fablab_notification_queue_depth", "Mails waiting to be sent.",
                                      value=mails["pending"])
            failed = GaugeMetricFamily("fablab_notification_failures", "Mails whose retries are spent.",
                                       value=mails["failed"])
            waiting = s.scalar(select(func.count()).select_from(WaitlistEntry)
                               .where(WaitlistEntry.status == EntryStatus.ACTIVE.value)) or 0
            waitlist = GaugeMetricFamily("fablab_waitlist_length", "Active waitlist entries.", value=waiting)
            offers = s.scalar(select(func.count()).select_from(WaitlistOffer)
                              .where(WaitlistOffer.status == OfferStatus.OPEN.value)) or 0
            offered = GaugeMetricFamily("fablab_waitlist_open_offers", "Freed time offered, not yet answered.",
                                        value=offers)
            dead = s.scalar(select(func.count()).select_from(DeadLetter).where(DeadLetter.reviewed.is_(False))) or 0
            letters = GaugeMetricFamily("fablab_dead_letters_unreviewed", "Refused MQTT messages nobody "
                                        "reviewed yet.", value=dead)
            families = [bridges, online, machines, mail, depth, failed, waitlist, offered, letters]
            up.add_metric([], 1)
        except Exception:  # noqa: BLE001 - a scrape reports the database as down, it never fails
            up.add_metric([], 0)
            db.session.rollback()
        finally:
            db.session.remove()
        yield up
        yield from families


class _Union:
    def __init__(self, *collectors: Any) -> None:
        self.collectors = collectors

    def collect(self) -> Iterator[Metric]:
        for c in self.collectors:
            yield from c.collect()


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def exposition(*extra: Any) -> bytes:
    """This process's metrics (or, in multiprocess mode, every process's, summed) plus `extra` collectors."""
    path = multiprocess_dir()
    if path:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=path)
        return generate_latest(_Union(registry, *extra))  # type: ignore[arg-type]
    return generate_latest(_Union(REGISTRY, *extra))  # type: ignore[arg-type]


# --- who may scrape ------------------------------------------------------------------------------------

LOOPBACK = "127.0.0.0/8,::1/128"
Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


def parse_networks(raw: str) -> Networks:
    """FABLAB_METRICS_ALLOW: comma-separated CIDRs (or addresses); "" allows no address (token only)."""
    try:
        return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise ValueError(f"FABLAB_METRICS_ALLOW: {exc}") from None


def _address_in(addr: str | None, networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    if not addr:
        return False
    try:
        ip = ipaddress.ip_address(addr.split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in net for net in networks if net.version == ip.version)


def token_matches(authorization: str | None, token: str) -> bool:
    """A `Bearer` header with the configured token; both sides hashed first, so the compare takes the same
    time whatever the lengths."""
    if not token or not authorization:
        return False
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(hashlib.sha256(given.strip().encode()).digest(),
                               hashlib.sha256(token.encode()).digest())


def scrape_refusal(authorization: str | None, remote_addr: str | None, token: str, allow: Networks,
                   address_trusted: bool = True) -> int | None:
    """None when the scraper may read the metrics, else the status: 401 (a token is configured and was not
    given right), 403 (no token configured and the address is not allowed). `address_trusted` is False
    when the address is a proxy's (X-Forwarded-For without FABLAB_PROXY_FIX): then only the token counts."""
    if token_matches(authorization, token):
        return None
    if address_trusted and _address_in(remote_addr, allow):
        return None
    return 401 if token else 403
