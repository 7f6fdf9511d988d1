"""Redirects stay on the site: `next=` after a sign-in and the Referer after a POST are untrusted input.

Before the safe-redirect helper a CR/LF in `next=` made werkzeug raise on the Location header (a 500),
and a booking action followed any Referer off the site.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

from fablab.extensions import db
from fablab.services import bookings as svc
from fablab.services import machines as machine_service
from fablab.web.redirects import safe_path
from tests.conftest import csrf_token

ALL_DAY = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
RULES = {"slot_minutes": 30, "min_minutes": 30, "max_minutes": 240, "opening_hours": ALL_DAY, "horizon_days": 14,
         "buffer_minutes": 0, "checkin_grace_minutes": 15, "max_hours_per_day": None, "max_hours_per_week": None,
         "max_future_bookings": None, "qualification_required": False}

HOSTILE = [
    "/machines\r\nSet-Cookie: evil=1",
    "/machines\nLocation: https://evil.example",
    "//evil.example/",
    "///evil.example/",
    "/\\evil.example",
    "\\\\evil.example",
    "/\t/evil.example",
    "https://evil.example/",
    "http:evil.example",
    "javascript:alert(1)",
    "evil.example",
    " /machines",
    "/" + "a" * 3000,
]


@pytest.mark.parametrize("target", HOSTILE)
def test_hostile_targets_are_not_paths(target: str) -> None:
    assert safe_path(target) is None


@pytest.mark.parametrize("target", ["/", "/machines/laser-1?week=2026-12-28", "/designs/3?v=2#files",
                                    "/bookings/%2F%2Fevil"])
def test_own_paths_pass(target: str) -> None:
    assert safe_path(target) == target


def _login_next(client, next_value: str):
    token = csrf_token(client, "/login")
    return client.post(f"/login?next={quote(next_value, safe='')}",
                       data={"email": "ada@example.org", "password": "correct-horse-9", "csrf_token": token})


@pytest.mark.parametrize("target", HOSTILE)
def test_sign_in_with_a_hostile_next_lands_on_the_site(client, make_member, target: str) -> None:
    make_member("ada@example.org")
    resp = _login_next(client, target)
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    assert resp.location == "/"  # the machine list, not the attacker's page
    assert "evil" not in resp.headers.get("Set-Cookie", "")
    assert client.get("/").status_code == 200  # and the sign-in worked


def test_sign_in_follows_an_own_next(client, make_member) -> None:
    make_member("ada@example.org")
    resp = _login_next(client, "/bookings?x=1")
    assert resp.status_code == 302 and resp.location == "/bookings?x=1"


@pytest.fixture
def booking(app_ctx, make_member, make_machine):
    machine = make_machine("laser-1", name="Laser One", policy=RULES)
    ada = make_member("ada@example.org")
    machine_service.grant(ada, by=None, machine=machine)
    start = (datetime.now(UTC) + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    b = svc.create_booking(ada, machine, start, start + timedelta(hours=1))
    db.session.commit()
    return b


def _cancel_with_referer(client, booking_id: int, referer: str):
    from tests.conftest import login

    login(client, "ada@example.org")
    token = csrf_token(client, "/bookings")
    return client.post(f"/bookings/{booking_id}/cancel", data={"csrf_token": token}, headers={"Referer": referer})


@pytest.mark.parametrize("referer", ["https://evil.example/bookings", "http://evil.example/",
                                     "//evil.example/x", "http://localhost.evil.example/bookings",
                                     "http://localhost/\\evil.example", "javascript:alert(1)", "not a url["])
def test_a_foreign_referer_is_not_followed_after_a_post(client, booking, referer: str) -> None:
    resp = _cancel_with_referer(client, booking.id, referer)
    assert resp.status_code == 302
    assert resp.location == f"/bookings/{booking.id}"


def test_an_own_referer_is_followed_as_a_path(client, booking) -> None:
    resp = _cancel_with_referer(client, booking.id, "http://localhost/bookings?tab=past")
    assert resp.status_code == 302
    assert resp.location == "/bookings?tab=past"
