"""Webhook delivery against a real HTTP receiver on loopback: signatures the receiver can check with the secret
the admin saw, retries with back-off, nothing lost and nothing doubled, disabling after 10 failures."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from fablab.domain.backoff import RETRY_BUDGET
from fablab.extensions import db
from fablab.models.notifications import Notice, OutboxMail
from fablab.models.webhooks import Webhook, WebhookDelivery
from fablab.services import webhook_delivery, webhooks
from fablab.services.lab_events import LabEvent, publish
from tests.conftest import csrf_token, login
from tests.notify.webhook_receiver import Receiver

NOW = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
BOOKING = {"booking_id": 7, "member_id": 3, "machine_id": 2, "machine": "Laser", "start": "2026-03-29T09:00:00+00:00",
           "end": "2026-03-29T10:00:00+00:00", "actor_id": 3}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rx = Receiver()
    rx.start()
    yield rx
    rx.stop()


def _hook(url: str, events=("booking.created",), **kw) -> tuple[Webhook, str]:
    hook, secret = webhooks.create(url, "test", events, created_by=None, now=NOW, **kw)
    db.session.commit()
    return hook, secret


def _count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _receiver_checks(secret: str, req, now: datetime) -> dict:
    """What a receiver does (the README's recipe, written independently of fablab's code)."""
    mac = hmac.new(secret.encode(), req.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(req.headers["X-Fablab-Signature-256"], "sha256=" + mac)
    parts = dict(p.split("=", 1) for p in req.headers["X-Fablab-Signature"].split(","))
    assert parts["t"] == req.headers["X-Fablab-Timestamp"]
    assert abs(int(now.timestamp()) - int(parts["t"])) <= 300
    signed = parts["t"].encode() + b"." + req.body
    assert hmac.compare_digest(parts["v1"], hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest())
    body = json.loads(req.body)
    assert req.headers["X-Fablab-Delivery"] == body["id"] and req.headers["X-Fablab-Event"] == body["type"]
    assert req.headers["Content-Type"] == "application/json" and req.headers["User-Agent"] == "fablab-webhooks"
    return body


def test_an_event_reaches_the_receiver_signed_with_the_secret_the_admin_saw(client, make_member, receiver):
    make_member("admin@example.org", role="admin")
    login(client, "admin@example.org")
    token = csrf_token(client, "/admin/webhooks/new")
    resp = client.post("/admin/webhooks/new", data={"url": receiver.url(), "description": "door display",
                                                    "events": ["booking.created", "usage.started"],
                                                    "csrf_token": token})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert resp.headers["Cache-Control"] == "no-store"
    page = resp.get_data(as_text=True)
    assert 'id="webhook-secret"' in page and "shown only this once" in page
    secret = re.search(r'value="([0-9a-f]{64})"', page).group(1)
    hook = db.session.scalars(select(Webhook)).one()
    assert secret not in (hook.secret_salt, hook.url) and hook.event_types == ["booking.created", "usage.started"]
    assert secret not in client.get("/admin/webhooks").get_data(as_text=True)  # shown once, never again

    publish(LabEvent("booking.created", NOW, {**BOOKING, "member": "Ada Lovelace", "email": "ada@example.org"}))
    publish(LabEvent("booking.cancelled", NOW, BOOKING))  # not subscribed
    db.session.commit()
    report = webhook_delivery.deliver_due(NOW)
    assert report.sent == 1 and len(receiver.requests) == 1
    req = receiver.requests[0]
    assert req.path == "/hook"
    body = _receiver_checks(secret, req, NOW)
    assert body["type"] == "booking.created" and body["created_at"] == "2026-03-29T01:30:00Z"
    assert body["data"] == BOOKING  # the member's name and address were stripped
    row = db.session.scalars(select(WebhookDelivery)).one()
    assert row.body.encode() == req.body and row.status == "sent" and row.last_status_code == 200
    assert webhook_delivery.deliver_due(NOW + timedelta(hours=1)).sent == 0 and len(receiver.requests) == 1


def test_the_listener_is_wired_once(app_ctx):
    from fablab import wiring
    from fablab.services import lab_events

    wiring.wire()
    wiring.wire()
    assert lab_events._listeners.count(webhooks.on_event) == 1


def test_a_rolled_back_change_queues_nothing(app_ctx, receiver):
    _hook(receiver.url())
    publish(LabEvent("booking.created", NOW, BOOKING))
    db.session.rollback()
    assert _count(WebhookDelivery) == 0


def test_inactive_hooks_and_other_types_get_nothing_one_event_id_for_all_hooks(app_ctx, receiver):
    a, _ = _hook(receiver.url("/a"))
    b, _ = _hook(receiver.url("/b"), events=("booking.created", "machine.status"))
    off, _ = _hook(receiver.url("/off"))
    webhooks.disable(off, "by hand", NOW)
    publish(LabEvent("booking.created", NOW, BOOKING))
    publish(LabEvent("window.result", NOW, {"window_id": 1}))  # never a webhook type
    publish(LabEvent("machine.status", NOW, {"machine_id": 2, "state": "alarm"}))
    db.session.commit()
    rows = list(db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))
    assert [(r.webhook_id, r.event_type) for r in rows] == [(a.id, "booking.created"), (b.id, "booking.created"),
                                                            (b.id, "machine.status")]
    assert rows[0].event_id == rows[1].event_id and rows[0].body == rows[1].body
    assert webhook_delivery.deliver_due(NOW).sent == 3
    assert sorted(r.path for r in receiver.requests) == ["/a", "/b", "/b"]


def test_names_go_out_only_when_the_lab_shows_them(app, app_ctx, receiver):
    _hook(receiver.url())
    app.config["FABLAB_SHOW_MEMBER_NAMES"] = True
    try:
        publish(LabEvent("booking.created", NOW, {**BOOKING, "member": "Ada", "email": "ada@example.org"}))
    finally:
        app.config["FABLAB_SHOW_MEMBER_NAMES"] = False
    db.session.commit()
    data = json.loads(db.session.scalars(select(WebhookDelivery)).one().body)["data"]
    assert data["member"] == "Ada" and "email" not in data


def test_500_then_200_arrives_once_after_the_retry(app_ctx, receiver):
    hook, secret = _hook(receiver.url())
    receiver.answers = [500]
    publish(LabEvent("booking.created", NOW, BOOKING))
    db.session.commit()
    first = webhook_delivery.deliver_due(NOW)
    assert (first.sent, first.failed) == (0, 1)
    row = db.session.scalars(select(WebhookDelivery)).one()
    assert row.status == "pending" and row.attempts == 1 and row.last_status_code == 500
    assert "HTTP 500" in row.last_error and row.next_attempt_at >= NOW + timedelta(seconds=30)
    # Not yet due: nothing is sent.
    assert webhook_delivery.deliver_due(NOW + timedelta(seconds=10)).sent == 0 and len(receiver.requests) == 1
    later = NOW + timedelta(minutes=2)
    assert webhook_delivery.deliver_due(later).sent == 1
    assert webhook_delivery.deliver_due(later + timedelta(hours=2)).sent == 0
    assert [r.status for r in receiver.requests] == [500, 200] and len(receiver.accepted) == 1
    first_req, second_req = receiver.requests
    assert first_req.body == second_req.body
    assert first_req.headers["X-Fablab-Delivery"] == second_req.headers["X-Fablab-Delivery"]
    _receiver_checks(secret, second_req, later)
    db.session.refresh(row)
    db.session.refresh(hook)
    assert row.status == "sent" and row.attempts == 2 and row.last_error is None
    assert hook.consecutive_failures == 0 and hook.retry_at is None


def test_receiver_down_then_up_nothing_lost_nothing_doubled(app_ctx, receiver):
    _hook(receiver.url())
    receiver.stop()
    for i in range(3):
        publish(LabEvent("booking.created", NOW, {**BOOKING, "booking_id": 100 + i}))
    db.session.commit()
    t = NOW
    down = webhook_delivery.deliver_due(t)
    # A dead receiver counts one failure per try, not one per waiting event.
    assert (down.sent, down.failed) == (0, 1)
    hook = db.session.scalars(select(Webhook)).one()
    assert hook.consecutive_failures == 1 and hook.retry_at > t
    errors = [d.last_error for d in db.session.scalars(select(WebhookDelivery)) if d.last_error]
    assert len(errors) == 1 and "Connection" in errors[0]
    t += timedelta(minutes=1)
    assert webhook_delivery.deliver_due(t).failed == 1
    receiver.start()
    t += timedelta(minutes=10)
    assert webhook_delivery.deliver_due(t).sent == 3
    assert webhook_delivery.deliver_due(t + timedelta(hours=3)).sent == 0
    ids = sorted(json.loads(r.body)["data"]["booking_id"] for r in receiver.accepted)
    assert ids == [100, 101, 102] and len(receiver.requests) == 3
    assert _count(WebhookDelivery, WebhookDelivery.status == "sent") == 3


def test_disabled_after_ten_failures_in_a_row_and_admins_are_told(app_ctx, make_member, receiver):
    admin = make_member("a@example.org", role="admin")
    steward = make_member("s@example.org", role="steward")
    hook, _ = _hook(receiver.url())
    receiver.answers = [503] * 50
    publish(LabEvent("booking.created", NOW, BOOKING))
    db.session.commit()
    t = NOW
    for n in range(1, 11):
        report = webhook_delivery.deliver_due(t)
        assert report.failed == 1, n
        db.session.refresh(hook)
        assert hook.consecutive_failures == n
        assert hook.active is (n < 10)
        t += timedelta(hours=2)
    assert report.disabled == [hook.id]
    assert hook.disabled_at is not None and "10 failed deliveries in a row" in hook.disabled_reason
    assert "HTTP 503" in hook.disabled_reason
    notices = list(db.session.scalars(select(Notice).where(Notice.kind == "webhook_disabled")))
    assert [n.member_id for n in notices] == [admin.id] and steward.id not in [n.member_id for n in notices]
    assert notices[0].link == f"/admin/webhooks/{hook.id}/deliveries"
    mail = db.session.scalars(select(OutboxMail).where(OutboxMail.kind == "webhook_disabled")).one()
    assert mail.to_address == admin.email
    from fablab.services.notice_render import render

    text = render("webhook_disabled", notices[0].params, admin, notices[0].link)
    assert "127.0.0.1" in text.subject + text.summary and "10" in text.summary and "HTTP 503" in text.text
    # Disabled: nothing more is tried, and the waiting delivery is kept.
    assert webhook_delivery.deliver_due(t + timedelta(days=1)).failed == 0 and len(receiver.requests) == 10
    row = db.session.scalars(select(WebhookDelivery)).one()
    assert row.status == "pending" and row.attempts == 10
    # Enabled again (the receiver fixed): what waited goes out at once.
    receiver.answers = []
    soon = t + timedelta(days=1)
    row.next_attempt_at = soon + timedelta(hours=1)  # its own back-off would hold it another hour
    webhooks.enable(hook, soon)
    db.session.commit()
    assert webhook_delivery.deliver_due(soon).sent == 1


def test_a_delivery_gives_up_after_the_retry_budget(app_ctx, receiver):
    hook, _ = _hook(receiver.url())
    receiver.answers = [500] * (RETRY_BUDGET + 5)
    publish(LabEvent("booking.created", NOW, BOOKING))
    db.session.commit()
    row = db.session.scalars(select(WebhookDelivery)).one()
    t = NOW
    for _ in range(RETRY_BUDGET):
        # Another event succeeding in between keeps the hook alive; this one keeps failing.
        hook.consecutive_failures = 0
        hook.retry_at = None
        db.session.commit()
        webhook_delivery.deliver_due(t)
        t += timedelta(hours=2)
    db.session.refresh(row)
    assert row.status == "failed" and row.attempts == RETRY_BUDGET
    assert webhook_delivery.deliver_due(t).failed == 0
    webhooks.redeliver(row, t)
    db.session.commit()
    receiver.answers = []
    assert webhook_delivery.deliver_due(t).sent == 1
    assert len(receiver.accepted) == 1


def test_redirects_are_not_followed(app_ctx, receiver):
    _hook(receiver.url())
    receiver.answers = [302]
    publish(LabEvent("booking.created", NOW, BOOKING))
    db.session.commit()
    assert webhook_delivery.deliver_due(NOW).failed == 1
    row = db.session.scalars(select(WebhookDelivery)).one()
    assert row.last_status_code == 302 and "redirects are not followed" in row.last_error
    assert [r.path for r in receiver.requests] == ["/hook"]


def test_a_slow_receiver_times_out(app_ctx, receiver):
    receiver.delay = 1.0
    outcome = webhook_delivery.post(receiver.url(), b"{}", {"Content-Type": "application/json"}, timeout=0.3)
    assert not outcome.ok and outcome.status is None and "timed out" in outcome.error


def test_a_metadata_address_is_refused_at_delivery_too(app_ctx, receiver):
    # Stored by other means (an old row, a name that now resolves elsewhere): never connected to.
    hook = Webhook(url="http://169.254.169.254/latest/meta-data/", description="", event_types=["booking.created"],
                   active=True, consecutive_failures=0, created_at=NOW, secret_salt="x")
    db.session.add(hook)
    db.session.commit()
    publish(LabEvent("booking.created", NOW, BOOKING))
    db.session.commit()
    assert webhook_delivery.deliver_due(NOW).failed == 1
    row = db.session.scalars(select(WebhookDelivery)).one()
    assert "169.254.169.254" in row.last_error and row.last_status_code is None


def test_a_claimed_delivery_is_leased_and_freed_when_the_sender_dies(app_ctx, receiver):
    _hook(receiver.url())
    publish(LabEvent("booking.created", NOW, BOOKING))
    db.session.commit()
    taken = webhook_delivery.claim(NOW, 10)
    assert len(taken) == 1
    # The sender died after claiming: nobody else takes it during the lease, anyone after it.
    assert webhook_delivery.claim(NOW + timedelta(seconds=30), 10) == []
    assert webhook_delivery.deliver_due(NOW + timedelta(seconds=30)).sent == 0
    after = NOW + webhook_delivery.LEASE + timedelta(seconds=1)
    assert webhook_delivery.deliver_due(after).sent == 1 and len(receiver.requests) == 1


def test_rotating_the_secret_signs_waiting_deliveries_with_the_new_one(app_ctx, receiver):
    hook, old = _hook(receiver.url())
    publish(LabEvent("booking.created", NOW, BOOKING))
    new = webhooks.rotate(hook)
    db.session.commit()
    assert new != old and new == webhooks.secret_for(hook)
    webhook_delivery.deliver_due(NOW)
    req = receiver.requests[0]
    _receiver_checks(new, req, NOW)
    with pytest.raises(AssertionError):
        _receiver_checks(old, req, NOW)


def test_two_senders_at_once_deliver_each_event_once(app, app_ctx, receiver):
    import threading

    _hook(receiver.url())
    for i in range(40):
        publish(LabEvent("booking.created", NOW, {**BOOKING, "booking_id": i}))
    db.session.commit()
    reports: list = []
    errors: list = []

    def sender() -> None:
        with app.app_context():
            try:
                reports.append(webhook_delivery.deliver_due(NOW))
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sum(r.sent for r in reports) == 40
    ids = [json.loads(r.body)["data"]["booking_id"] for r in receiver.requests]
    assert sorted(ids) == list(range(40))


def test_the_readme_recipe_verifies_a_real_delivery(app_ctx, receiver):
    from pathlib import Path

    from fablab.models.types import utcnow

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Webhooks", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert len([line for line in code.splitlines() if line.strip()]) <= 6
    recipe: dict = {}
    exec(compile(code, "README.md", "exec"), recipe)  # noqa: S102 (the documented recipe, run as written)
    hook, secret = _hook(receiver.url())
    now = utcnow()
    publish(LabEvent("booking.created", now, BOOKING))
    db.session.commit()
    assert webhook_delivery.deliver_due(now).sent == 1
    req = receiver.requests[0]
    assert recipe["verify"](secret, req.body, req.headers)
    assert not recipe["verify"](secret, req.body + b" ", req.headers)
    assert not recipe["verify"]("wrong", req.body, req.headers)


def test_the_query_string_is_kept_and_https_to_a_plain_server_fails_cleanly(app_ctx, receiver):
    ok = webhook_delivery.post(receiver.url("/api/webhook/abc?token=1&x=2"), b"{}", {"X-Test": "1"})
    assert ok.ok and receiver.requests[-1].path == "/api/webhook/abc?token=1&x=2"
    tls = webhook_delivery.post(f"https://127.0.0.1:{receiver.port}/hook", b"{}", {}, timeout=2)
    assert not tls.ok and tls.status is None and "SSL" in tls.error


@pytest.mark.parametrize("url", ["garbage", "", "file:///etc/passwd", "http://user:pw@127.0.0.1/"])
def test_a_stored_url_that_breaks_the_rules_is_never_fetched(app_ctx, url):
    outcome = webhook_delivery.post(url, b"{}", {})
    assert not outcome.ok and outcome.status is None and outcome.error


def test_a_sender_killed_after_the_post_repeats_it_once_with_the_same_id(app_ctx, receiver):
    _hook(receiver.url())
    for i in range(3):
        publish(LabEvent("booking.created", NOW, {**BOOKING, "booking_id": i}))
    db.session.commit()
    calls = []

    def dies_after_the_second(url, body, headers):
        outcome = webhook_delivery.post(url, body, headers)
        calls.append(outcome)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed between the receiver's answer and our commit")
        return outcome

    with pytest.raises(KeyboardInterrupt):
        webhook_delivery.deliver_due(NOW, sender=dies_after_the_second)
    db.session.rollback()
    assert len(receiver.requests) == 2 and _count(WebhookDelivery, WebhookDelivery.status == "sent") == 1
    # Another sender takes over when the lease ends: the unrecorded one once more, the third once.
    later = NOW + webhook_delivery.LEASE + timedelta(seconds=1)
    assert webhook_delivery.deliver_due(later).sent == 2
    ids = [r.headers["X-Fablab-Delivery"] for r in receiver.requests]
    assert len(ids) == 4 and len(set(ids)) == 3 and ids[1] == ids[2]
    assert _count(WebhookDelivery, WebhookDelivery.status == "sent") == 3
