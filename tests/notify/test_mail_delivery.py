"""Delivering the outbox to a real SMTP server: one connection per batch, retries with back-off while the
server is down or busy, permanent refusals shown to admins, leases, a stop between mails."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import func, select

from fablab.domain.backoff import RETRY_BUDGET, retry_delay
from fablab.extensions import db
from fablab.models import Role
from fablab.models.notifications import Notice, OutboxMail
from fablab.services import mail_delivery, notify
from fablab.services.mail_delivery import deliver_due
from tests.notify.test_mail_build import NOW, mail_config  # noqa: F401 (fixture)


def _queue(member, n: int, machine: str = "Laser") -> list[str]:
    for i in range(n):
        notify.notify(member, "booking_confirmed", {"machine": f"{machine} {i}"}, now=NOW)
    db.session.commit()
    return list(db.session.scalars(select(OutboxMail.message_id).order_by(OutboxMail.id)))


def _mails() -> list[OutboxMail]:
    db.session.expire_all()
    return list(db.session.scalars(select(OutboxMail).order_by(OutboxMail.id)))


def _arrived(sink) -> list[str]:
    return [m["Message-ID"] for m in sink.messages]


def test_one_connection_for_a_batch(mail_config, make_member):  # noqa: F811
    ids = _queue(make_member(), 6)
    result = deliver_due(NOW)
    assert (result.claimed, result.sent) == (6, 6)
    assert mail_config.connections == 1
    assert _arrived(mail_config) == ids
    assert deliver_due(NOW + timedelta(minutes=1)).claimed == 0  # nothing sent twice
    assert mail_config.connections == 1  # and no connection when there is nothing to send


def test_server_down_for_a_while_then_up_everything_arrives_once(mail_config, make_member):  # noqa: F811
    ids = _queue(make_member(), 4)
    mail_config.stop()
    r1 = deliver_due(NOW)
    assert (r1.claimed, r1.retried, r1.sent) == (4, 4, 0)
    mails = _mails()
    assert {m.attempts for m in mails} == {1} and {m.status for m in mails} == {"pending"}
    assert all("cannot reach" in m.last_error for m in mails)
    assert all(m.lease_until is None for m in mails)
    for m in mails:  # back-off from the domain rule, jittered per message
        expected = NOW + retry_delay(1, m.message_id)
        assert expected <= m.next_attempt_at < expected + timedelta(seconds=5)
    assert deliver_due(NOW + timedelta(seconds=10)).claimed == 0  # not due yet
    r2 = deliver_due(NOW + timedelta(minutes=1))  # still down: the second attempt
    assert r2.retried == 4 and {m.attempts for m in _mails()} == {2}

    mail_config.start()
    r3 = deliver_due(NOW + timedelta(minutes=10))
    assert (r3.claimed, r3.sent) == (4, 4)
    assert sorted(_arrived(mail_config)) == sorted(ids)
    assert deliver_due(NOW + timedelta(hours=2)).claimed == 0
    assert len(mail_config.messages) == 4
    assert all(m.status == "sent" and m.last_error is None for m in _mails())


def test_temporary_451_twice_then_ok(mail_config, make_member):  # noqa: F811
    ids = _queue(make_member(), 3)
    mail_config.fail_next(2)
    r1 = deliver_due(NOW)
    assert (r1.sent, r1.retried) == (1, 2)  # the connection stays usable after a 4xx
    assert mail_config.connections == 1
    waiting = [m for m in _mails() if m.status == "pending"]
    assert len(waiting) == 2 and all(m.last_error.startswith("451") for m in waiting)
    r2 = deliver_due(NOW + timedelta(minutes=5))
    assert r2.sent == 2
    assert sorted(_arrived(mail_config)) == sorted(ids)
    assert [m.attempts for m in _mails()] == [1, 1, 0]


def test_permanent_550_fails_the_mail_and_tells_the_admins(mail_config, make_member):  # noqa: F811
    admin = make_member(role=Role.ADMIN, name="Admin")
    member = make_member()
    ids = _queue(member, 2)
    mail_config.fail_next(1, "550 5.1.1 No such user here")
    r = deliver_due(NOW)
    assert (r.sent, r.failed, r.retried) == (1, 1, 0)
    first, second = _mails()
    assert first.status == "failed" and first.last_error.startswith("550") and first.attempts == 1
    assert second.status == "sent" and _arrived(mail_config) == [ids[1]]
    [notice] = db.session.scalars(select(Notice).where(Notice.kind == "delivery_failed")).all()
    assert notice.member_id == admin.id and notice.params["mail_id"] == first.id
    assert notice.params["to"] == member.email and notice.email_state == "none"  # in-app by default
    from fablab.services.notice_render import summary

    line = summary(notice)
    assert member.email in line and "550" in line and "booking_confirmed" in line
    assert deliver_due(NOW + timedelta(hours=2)).claimed == 0  # never retried
    assert mail_delivery.outbox_counts() == {"failed": 1, "sent": 1}


def test_retry_budget_spent_fails_with_the_reason(mail_config, make_member):  # noqa: F811
    admin = make_member(role=Role.ADMIN)
    _queue(make_member(), 1)
    db.session.execute(OutboxMail.__table__.update().values(attempts=RETRY_BUDGET - 1))
    db.session.commit()
    mail_config.stop()
    assert deliver_due(NOW).failed == 1
    [mail] = _mails()
    assert mail.status == "failed" and mail.attempts == RETRY_BUDGET
    assert mail.last_error.startswith(f"gave up after {RETRY_BUDGET} attempts: cannot reach")
    assert db.session.scalar(select(func.count()).select_from(Notice).where(
        Notice.kind == "delivery_failed", Notice.member_id == admin.id)) == 1


def test_no_mail_server_leaves_the_mails_pending_and_says_so_once(app, mail_config, make_member, caplog,  # noqa: F811
                                                                  monkeypatch):
    monkeypatch.setitem(app.config, "FABLAB_SMTP_URL", "")
    monkeypatch.setattr(mail_delivery, "_warned_no_server", False)
    _queue(make_member(), 2)
    with caplog.at_level(logging.WARNING, logger="fablab.mail"):
        r1, r2 = deliver_due(NOW), deliver_due(NOW)
    assert r1.skipped and r2.skipped and r1.claimed == 0
    assert [r.message for r in caplog.records].count(
        "FABLAB_SMTP_URL is empty: mails wait in the outbox until a mail server is set") == 1
    assert all(m.status == "pending" and m.attempts == 0 and m.lease_until is None for m in _mails())
    assert mail_config.connections == 0


def test_a_leased_mail_is_left_to_its_worker_until_the_lease_ends(mail_config, make_member):  # noqa: F811
    ids = _queue(make_member(), 2)
    db.session.execute(OutboxMail.__table__.update().where(OutboxMail.message_id == ids[0])
                       .values(lease_until=NOW + timedelta(minutes=5)))
    db.session.commit()
    assert deliver_due(NOW).sent == 1 and _arrived(mail_config) == [ids[1]]
    assert deliver_due(NOW + timedelta(minutes=5)).sent == 1  # the other worker died: its lease ran out
    assert _arrived(mail_config) == [ids[1], ids[0]]


def test_a_stop_finishes_the_mail_in_flight_and_gives_the_rest_back(mail_config, make_member):  # noqa: F811
    ids = _queue(make_member(), 5)
    asked = []

    def stop_after_two() -> bool:
        asked.append(1)
        return len(mail_config.messages) >= 2

    r = deliver_due(NOW, should_stop=stop_after_two)
    assert (r.sent, r.released) == (2, 3)
    assert all(m.lease_until is None and m.attempts == 0 for m in _mails())
    assert deliver_due(NOW).sent == 3  # due again at once
    assert _arrived(mail_config) == ids


def test_batch_limit_and_order(mail_config, make_member):  # noqa: F811
    ids = _queue(make_member(), 5)
    assert deliver_due(NOW, limit=2).sent == 2
    assert deliver_due(NOW, limit=2).sent == 2
    assert deliver_due(NOW, limit=2).sent == 1
    assert _arrived(mail_config) == ids and mail_config.connections == 3


def test_a_server_closing_mid_batch_costs_one_attempt_and_the_rest_go_next_round(mail_config, make_member):  # noqa: F811
    ids = _queue(make_member(), 3)
    mail_config.fail_next(1, "421 4.3.2 Service shutting down")
    r1 = deliver_due(NOW)
    assert (r1.retried, r1.released, r1.sent) == (1, 2, 0)
    first, *rest = _mails()
    assert first.attempts == 1 and first.last_error.startswith("421")
    assert all(m.attempts == 0 and m.lease_until is None and m.status == "pending" for m in rest)
    assert deliver_due(NOW).sent == 2  # not held back by the back-off: they were never tried
    assert deliver_due(NOW + timedelta(minutes=5)).sent == 1
    assert sorted(_arrived(mail_config)) == sorted(ids) and mail_config.connections == 3
