"""Delete my account: pseudonymized at once, or after staff confirm when I hold future bookings; the figures
keep counting my history, my name and email are gone from the database, and nobody signs in as me again."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import JSON, String, Text, cast, func, or_, select

from fablab.domain import audit_actions
from fablab.extensions import db
from fablab.models import ApiToken, Booking, Member, MemberSession
from fablab.models.accounts import AuditEntry, MemberIdentity
from fablab.models.designs import Design
from fablab.models.inductions import InductionSession, InductionSignup
from fablab.models.notifications import Notice
from fablab.models.privacy import DeletionRequest
from fablab.models.scheduling import RequestWindow, SlotRequest, WaitlistEntry, WaitlistOffer
from fablab.models.types import utcnow
from fablab.models.usage import UsageSession
from fablab.models.webhooks import Webhook, WebhookDelivery
from fablab.services import account_deletion, audit, fairness, notice_render, password_login
from fablab.services import designs as design_service
from fablab.services import machines as machine_service
from fablab.services import members as member_service
from fablab.services.authorize import authorize
from fablab.services.identities import ExternalIdentity, sign_in_external
from tests.conftest import csrf_token, login

NAME = "Wilhelmina Quarterfield"
EMAIL = "wilhelmina.q@example.org"
PASSWORD = "correct-horse-9"
OPEN_ALL_DAY = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def _machine(make_machine, slug: str = "laser-d"):
    return make_machine(slug, name="Laser Delta", policy={
        "slot_minutes": 15, "min_minutes": 15, "max_minutes": 600, "opening_hours": OPEN_ALL_DAY,
        "horizon_days": 30, "buffer_minutes": 0, "qualification_required": False})


def _history(me: Member, machine, now) -> None:
    """A past booking with its usage, a design, and a staff action naming me."""
    start = now - timedelta(days=2)
    b = Booking(machine_id=machine.id, member_id=me.id, start_at=start, end_at=start + timedelta(hours=2),
                booked_end_at=start + timedelta(hours=2), status="completed", checked_in_at=start,
                note=f"call {NAME}")
    db.session.add(b)
    db.session.flush()
    db.session.add(UsageSession(key=f"k{me.id}", machine_id=machine.id, member_id=me.id, booking_id=b.id,
                                start_at=start, end_at=start + timedelta(hours=2), duration_s=7200,
                                source="event", open=False))
    design_service.create_design(me, title="Hinge", licence="CC-BY-4.0",
                                 files=[design_service.Upload("hinge.txt", _bytes(b"a hinge\n"))])
    audit.record(None, audit_actions.ROLE_CHANGED, target=me, detail={"from": "member", "to": "member",
                                                                        "email": EMAIL})
    db.session.commit()


def _bytes(data: bytes) -> Any:
    import io

    return io.BytesIO(data)


def _figures(machine, now) -> tuple[Any, ...]:
    db.session.commit()
    r = fairness.build_review(fairness.ReviewQuery(now - timedelta(days=7), now), fairness.Viewer(None, True), now)
    (m,) = [x for x in r.machines if x.name == machine.name]
    return (r.totals.users, r.totals.used_hours, r.totals.requested_hours, m.used_hours,
            sorted(x.used_hours for x in r.members))


def _text_hits(*needles: str) -> list[str]:
    """Every (table, column) whose text still holds one of the needles (in any case)."""
    hits = []
    for table in db.metadata.sorted_tables:
        for col in table.columns:
            if not isinstance(col.type, String | Text | JSON):
                continue
            cond = or_(*(func.lower(cast(col, String)).like(f"%{n.lower()}%") for n in needles))
            if db.session.execute(select(table).where(cond).limit(1)).first() is not None:
                hits.append(f"{table.name}.{col.name}")
    return hits


def _delete_form(client: FlaskClient, confirm: str, token: str | None = None) -> Any:
    return client.post("/privacy/delete", data={"confirm": confirm,
                                                "csrf_token": token or csrf_token(client, "/privacy/")})


def test_delete_at_once_keeps_the_figures_and_forgets_name_and_email(client, make_member, make_machine) -> None:
    now = utcnow()
    machine = _machine(make_machine)
    me = make_member(email=EMAIL, name=NAME, badge="04DEADBEEF", pin="2468")
    other = make_member(name="Other Member")
    member_service.create_api_token(me, "script")
    db.session.add(MemberIdentity(member_id=me.id, provider="oidc:https://id.example.org", subject="sub-w",
                                  email=EMAIL))
    # A notice to someone else that names me (a snapshot): rewritten to my pseudonym.
    db.session.add(Notice(member_id=other.id, kind="booking_cancelled_by_staff", params={"by": NAME},
                          created_at=now))
    # A lab that shows names in webhooks: a body still waiting to go out names me.
    hook = Webhook(url="https://hooks.example.org/x", secret_salt="s" * 16, event_types=["booking.created"])
    db.session.add(hook)
    db.session.flush()
    db.session.add(WebhookDelivery(webhook_id=hook.id, event_type="booking.created", event_id="e1",
                                   body=json.dumps({"data": {"member_name": NAME, "n": 1}}, separators=(",", ":"))))
    _history(me, machine, now)
    before = _figures(machine, now)
    assert before[0] == 1 and before[1] == 2  # my two hours are in the review
    assert {"members.name", "members.email", "designs.author_name", "designs.search_text", "audit_log.target_label",
            "audit_log.detail", "notices.params", "bookings.note",
            "webhook_deliveries.body"} <= set(_text_hits(NAME, EMAIL))
    me_id, pseudonym = me.id, me.pseudonym

    login(client, EMAIL)
    page = client.get("/privacy/").get_data(as_text=True)
    assert "Delete my account" in page and pseudonym in page and "open licence" in page

    wrong = _delete_form(client, "not-my-password")
    assert wrong.status_code == 422 and "This is not your password." in wrong.get_data(as_text=True)
    assert db.session.get(Member, me_id).deleted_at is None

    resp = _delete_form(client, PASSWORD)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/login")
    assert client.get("/account").status_code == 302  # signed out at once

    gone = db.session.get(Member, me_id)
    assert gone.deleted_at is not None and not gone.active
    assert (gone.name, gone.email) == (pseudonym, f"deleted-{me_id}@deleted.invalid")
    assert (gone.password_hash, gone.pin_hash, gone.badge_hash, gone.ical_token_hash) == (None, None, None, None)
    for model in (ApiToken, MemberSession, MemberIdentity):
        assert db.session.scalars(select(model).where(model.member_id == me_id)).all() == []
    assert _figures(machine, now) == before
    assert _text_hits(NAME, EMAIL) == []
    design = db.session.scalar(select(Design))
    assert design.author_id == me_id and design.author_name == pseudonym
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == audit_actions.MEMBER_DELETED))
    assert entry.target_id == me_id and entry.actor_id == me_id and pseudonym in entry.actor_label
    assert db.session.scalar(select(Notice).where(Notice.member_id == other.id)).params == {"by": pseudonym}
    assert json.loads(db.session.scalar(select(WebhookDelivery.body))) == {"data": {"member_name": pseudonym, "n": 1}}

    # Never again: password, badge, API token, the linked provider; the address is free for a new account.
    assert login(client, EMAIL).status_code == 401
    assert password_login.authenticate(gone.email, PASSWORD) is None
    assert member_service.member_by_badge("04DEADBEEF") is None
    assert authorize(machine, "04DEADBEEF", now).allow is False  # the badge at a machine
    assert not member_service.check_pin(gone, "2468")  # the kiosk's number and PIN
    refused = sign_in_external(ExternalIdentity("oidc:https://id.example.org", "sub-w", EMAIL, True, NAME),
                               role_map={}, create=False, now=now)
    assert refused.member is None
    fresh = member_service.create_member(EMAIL, "Someone New", password=PASSWORD)
    db.session.commit()
    assert fresh.id != me_id and login(client, EMAIL).status_code == 302


def test_future_booking_waits_for_staff_then_the_waitlist_moves_up(client, make_member, make_machine) -> None:
    now = utcnow()
    machine = _machine(make_machine)
    me = make_member(email=EMAIL, name=NAME)
    waiting = make_member(name="Patient Waiter")
    steward = make_member(role="steward")
    plain = make_member()
    start = now + timedelta(days=3)
    booking = Booking(machine_id=machine.id, member_id=me.id, start_at=start, end_at=start + timedelta(hours=2),
                      booked_end_at=start + timedelta(hours=2), status="confirmed")
    db.session.add(booking)
    db.session.add(WaitlistEntry(member_id=waiting.id, machine_id=machine.id, kind="slot", start_at=start,
                                 end_at=start + timedelta(hours=2), status="active", joined_at=now))
    db.session.commit()
    me_id, booking_id = me.id, booking.id

    login(client, EMAIL)
    page = client.get("/privacy/").get_data(as_text=True)
    assert "Laser Delta" in page and "Ask to delete my account" in page
    resp = _delete_form(client, PASSWORD)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/privacy/")
    assert "You asked to delete your account" in client.get("/privacy/").get_data(as_text=True)
    assert db.session.get(Member, me_id).deleted_at is None and db.session.get(DeletionRequest, me_id) is not None
    told = db.session.scalar(select(Notice).where(Notice.member_id == steward.id, Notice.kind == "deletion_requested"))
    assert told is not None and told.params["name"] == NAME and told.link == "/privacy/requests"
    said = notice_render.render(told.kind, told.params, steward, told.link)
    assert NAME in said.subject and "holds 1 thing " in notice_render.summary(told)

    other = client.application.test_client()
    login(other, plain.email)
    assert other.get("/privacy/requests").status_code == 403
    assert other.post(f"/privacy/requests/{me_id}/confirm",
                      data={"csrf_token": csrf_token(other, "/privacy/")}).status_code == 403
    staff = client.application.test_client()
    login(staff, steward.email)
    listing = staff.get("/privacy/requests").get_data(as_text=True)
    assert NAME in listing and "Laser Delta" in listing
    assert staff.post(f"/privacy/requests/{me_id}/confirm").status_code == 400  # no CSRF token
    assert db.session.get(Member, me_id).deleted_at is None
    done = staff.post(f"/privacy/requests/{me_id}/confirm", data={"csrf_token": csrf_token(staff, "/privacy/requests")})
    assert done.status_code == 302

    gone = db.session.get(Member, me_id)
    assert gone.deleted_at is not None and db.session.get(DeletionRequest, me_id) is None
    b = db.session.get(Booking, booking_id)
    assert b.status == "cancelled" and b.cancelled_by_id == steward.id
    offer = db.session.scalar(select(WaitlistOffer).where(WaitlistOffer.member_id == waiting.id))
    assert offer is not None and offer.start_at == start
    assert client.get("/privacy/").status_code == 302  # the member's own browser is signed out
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == audit_actions.MEMBER_DELETED))
    assert entry.actor_id == steward.id and entry.target_id == me_id
    assert _text_hits(NAME, EMAIL) == []
    assert db.session.get(Notice, told.id).params["name"] == gone.pseudonym


def test_a_withdrawn_request_keeps_the_account(client, make_member, make_machine) -> None:
    now = utcnow()
    machine = _machine(make_machine)
    me = make_member(email=EMAIL, name=NAME)
    db.session.add(Booking(machine_id=machine.id, member_id=me.id, start_at=now + timedelta(days=1),
                           end_at=now + timedelta(days=1, hours=1), status="confirmed"))
    db.session.commit()
    login(client, EMAIL)
    _delete_form(client, PASSWORD)
    assert db.session.get(DeletionRequest, me.id) is not None
    resp = client.post("/privacy/delete/withdraw", data={"csrf_token": csrf_token(client, "/privacy/")})
    assert resp.status_code == 302 and db.session.get(DeletionRequest, me.id) is None
    assert db.session.get(Member, me.id).active


def test_a_trainer_of_a_future_induction_waits_for_staff(app_ctx, make_member, make_machine) -> None:
    now = utcnow()
    machine = _machine(make_machine)
    trainer = make_member(role="steward", name=NAME, email=EMAIL)
    make_member(role="admin")
    db.session.add(InductionSession(machine_type_id=machine.type_id, trainer_id=trainer.id,
                                    start_at=now + timedelta(days=5), end_at=now + timedelta(days=5, hours=1),
                                    capacity=3))
    db.session.commit()
    kinds = [o.kind for o in account_deletion.obligations(trainer, now)]
    assert kinds == ["induction_session"]
    assert account_deletion.request_deletion(trainer, now) == "pending"


def test_csrf_and_sign_in_guard_my_deletion(client, make_member) -> None:
    me = make_member(email=EMAIL, name=NAME)
    anonymous = client.post("/privacy/delete", data={"confirm": PASSWORD, "csrf_token": csrf_token(client)})
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    login(client, EMAIL)
    assert client.post("/privacy/delete", data={"confirm": PASSWORD}).status_code == 400
    assert db.session.get(Member, me.id).deleted_at is None


def test_single_sign_on_member_confirms_with_the_email(client, app_ctx, make_member) -> None:
    me = make_member(email=EMAIL, name=NAME)
    db.session.add(MemberIdentity(member_id=me.id, provider="ldap", subject="uid=wq", email=EMAIL))
    db.session.commit()
    login(client, EMAIL)
    me.password_hash = None  # signed in by a provider; no local password
    db.session.commit()
    page = client.get("/privacy/").get_data(as_text=True)
    assert "Type your email address" in page
    wrong = _delete_form(client, "someone@example.org")
    assert wrong.status_code == 422 and "This is not your email address." in wrong.get_data(as_text=True)
    assert _delete_form(client, EMAIL.upper()).status_code == 302
    assert db.session.get(Member, me.id).deleted_at is not None
    assert sign_in_external(ExternalIdentity("ldap", "uid=wq", EMAIL, True, NAME), role_map={}, create=False,
                            now=utcnow()).member is None


def test_admin_deletes_a_member_from_the_member_page(client, make_member, make_machine) -> None:
    admin = make_member(role="admin")
    steward = make_member(role="steward")
    me = make_member(email=EMAIL, name=NAME)
    machine_service.grant(me, by=admin, machine=_machine(make_machine))
    audit.record(admin, audit_actions.QUALIFICATION_GRANTED, target=me)
    db.session.commit()
    s = client.application.test_client()
    login(s, steward.email)
    assert s.get(f"/privacy/members/{me.id}/delete").status_code == 403
    login(client, admin.email)
    assert f"/privacy/members/{me.id}/delete" in client.get(f"/admin/members/{me.id}").get_data(as_text=True)
    page = client.get(f"/privacy/members/{me.id}/delete")
    assert page.status_code == 200 and str(me.member_no) in page.get_data(as_text=True)
    token = csrf_token(client, f"/privacy/members/{me.id}/delete")
    wrong = client.post(f"/privacy/members/{me.id}/delete", data={"member_no": "1", "csrf_token": token})
    assert wrong.status_code == 422 and f"Type {me.member_no} to confirm." in wrong.get_data(as_text=True)
    ok = client.post(f"/privacy/members/{me.id}/delete", data={"member_no": str(me.member_no), "csrf_token": token})
    assert ok.status_code == 302
    gone = db.session.get(Member, me.id)
    assert gone.deleted_at is not None
    assert "Account deleted" in client.get(f"/admin/members/{me.id}").get_data(as_text=True)
    # A hand-made edit of the deleted member is refused: the name cannot come back.
    edit = client.post(f"/admin/members/{me.id}", data={"name": NAME, "email": EMAIL, "role": "member",
                                                         "csrf_token": csrf_token(client, f"/admin/members/{me.id}")})
    assert edit.status_code == 409 and "was deleted" in edit.get_data(as_text=True)
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == audit_actions.MEMBER_DELETED))
    assert entry.actor_id == admin.id
    assert _text_hits(NAME, EMAIL) == []
    own = client.get(f"/privacy/members/{admin.id}/delete")
    assert own.status_code == 409 and "your own account" in own.get_data(as_text=True)


def test_the_only_admin_cannot_delete_their_account(client, make_member) -> None:
    admin = make_member(role="admin", email=EMAIL, name=NAME)
    login(client, EMAIL)
    resp = _delete_form(client, PASSWORD)
    assert resp.status_code == 409 and "only admin" in resp.get_data(as_text=True)
    assert db.session.get(Member, admin.id).deleted_at is None


def test_what_i_wait_for_is_withdrawn_so_the_next_people_move_up(app_ctx, make_member, make_machine) -> None:
    now = utcnow()
    machine = _machine(make_machine)
    me = make_member(email=EMAIL, name=NAME)
    next_in_line = make_member(name="Next In Line")
    trainer = make_member(role="steward")
    session = InductionSession(machine_type_id=machine.type_id, trainer_id=trainer.id, capacity=1,
                               start_at=now + timedelta(days=6), end_at=now + timedelta(days=6, hours=1))
    window = RequestWindow(machine_id=machine.id, period_start=now + timedelta(days=8),
                           period_end=now + timedelta(days=15), opens_at=now - timedelta(days=1),
                           closes_at=now + timedelta(days=2), commitment="0" * 64, secret_seed="1" * 64)
    db.session.add_all([session, window])
    db.session.flush()
    db.session.add_all([
        InductionSignup(session_id=session.id, member_id=me.id, status="confirmed"),
        InductionSignup(session_id=session.id, member_id=next_in_line.id, status="waitlisted", position=1),
        WaitlistEntry(member_id=me.id, machine_id=machine.id, kind="slot", start_at=now + timedelta(days=1),
                      end_at=now + timedelta(days=1, hours=1), status="active", joined_at=now),
        SlotRequest(window_id=window.id, member_id=me.id, machine_id=machine.id, start_at=now + timedelta(days=9),
                    end_at=now + timedelta(days=9, hours=1)),
    ])
    db.session.commit()
    assert account_deletion.obligations(me, now) == []
    assert account_deletion.request_deletion(me, now) == "deleted"
    statuses = {s.member_id: s.status for s in db.session.scalars(select(InductionSignup))}
    assert statuses == {me.id: "cancelled", next_in_line.id: "confirmed"}
    assert db.session.scalar(select(WaitlistEntry.status)) == "left"
    assert db.session.scalars(select(SlotRequest)).all() == []
