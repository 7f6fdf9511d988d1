"""Kiosk activation links: one-time, valid 24 hours, stored hashed; the device cookie is a different secret.

A used or expired link answers with a page that says so and what to do (ask an admin for a new link);
the admin makes that new link on the kiosk page.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from fablab.extensions import db
from fablab.models import KioskDevice
from fablab.models.kiosks import KioskActivation
from fablab.security import token_digest
from fablab.services import kiosk as kiosk_service
from tests.conftest import csrf_token, login

pytestmark = pytest.mark.dates  # 24 hours later across DST switches and the year end

COOKIE = "fablab_kiosk"


def _cookie(client) -> str | None:
    found = client.get_cookie(COOKIE, path="/kiosk")
    return found.value if found else None


def test_a_link_registers_the_screen_once_with_a_new_device_secret(app_ctx, client) -> None:
    device, token = kiosk_service.register_kiosk("front", datetime.now(UTC))
    db.session.commit()
    assert db.session.scalar(select(KioskActivation.token_hash)) == token_digest(token)  # only the digest
    assert client.get("/kiosk/").status_code == 403  # not yet
    resp = client.get(f"/kiosk/activate/{token}")
    assert resp.status_code == 302 and resp.location == "/kiosk/"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    secret = _cookie(client)
    assert secret and secret != token  # the link is not the device's secret
    assert client.get("/kiosk/").status_code == 200
    db.session.refresh(device)
    assert device.token_hash == token_digest(secret)
    act = db.session.scalar(select(KioskActivation))
    assert act.used_at is not None

    # The same link on another screen: refused, with what to do.
    other = client.application.test_client()
    again = other.get(f"/kiosk/activate/{token}")
    assert again.status_code == 410
    page = again.get_data(as_text=True)
    assert "already used" in page and "ask an admin for a new link" in page
    assert _cookie(other) is None and other.get("/kiosk/").status_code == 403
    # The kiosk itself reopening its link (a bookmark) just goes to the kiosk.
    assert client.get(f"/kiosk/activate/{token}").location == "/kiosk/"


def test_a_link_expires_after_24_hours(app_ctx, client) -> None:
    now = datetime.now(UTC)
    _, token = kiosk_service.register_kiosk("front", now)
    _, fresh = kiosk_service.register_kiosk("back", now)
    db.session.commit()
    with time_machine.travel(now + timedelta(hours=24, seconds=1), tick=False):
        resp = client.get(f"/kiosk/activate/{token}")
    assert resp.status_code == 410
    page = resp.get_data(as_text=True)
    assert "has expired" in page and "24 hours" in page and "ask an admin for a new link" in page.lower()
    assert _cookie(client) is None
    with time_machine.travel(now + timedelta(hours=23, minutes=59), tick=False):
        assert client.get(f"/kiosk/activate/{fresh}").status_code == 302  # just inside the day
    assert _cookie(client)


def test_unknown_and_revoked_links_say_so(app_ctx, client) -> None:
    device, token = kiosk_service.register_kiosk("front", datetime.now(UTC))
    device.revoked = True
    db.session.commit()
    unknown = client.get("/kiosk/activate/not-a-real-link")
    assert unknown.status_code == 404 and "not known here" in unknown.get_data(as_text=True)
    revoked = client.get(f"/kiosk/activate/{token}")
    assert revoked.status_code == 410 and "was revoked" in revoked.get_data(as_text=True)
    assert _cookie(client) is None


def test_the_admin_makes_a_new_link_and_the_old_one_stops(app_ctx, client, make_member) -> None:
    make_member("admin@example.org", role="admin")
    login(client, "admin@example.org")
    token = csrf_token(client, "/kiosk/admin")
    page = client.post("/kiosk/admin", data={"csrf_token": token, "name": "Front door"}).get_data(as_text=True)
    first = re.search(r'value="http://localhost/kiosk/activate/([^"]+)" data-select-on-click', page)
    assert first and "within 24 hours" in page and "works once" in page
    device = db.session.scalar(select(KioskDevice).where(KioskDevice.name == "Front door"))
    resp = client.post(f"/kiosk/admin/{device.id}/link", data={"csrf_token": token})
    assert resp.status_code == 200
    second = re.search(r'/kiosk/activate/([^"]+)"', resp.get_data(as_text=True))
    assert second and second.group(1) != first.group(1)

    screen = client.application.test_client()
    assert screen.get(f"/kiosk/activate/{first.group(1)}").status_code == 410  # replaced by the newer link
    assert screen.get(f"/kiosk/activate/{second.group(1)}").status_code == 302
    assert screen.get("/kiosk/").status_code == 200

    # A new link for a kiosk already in use moves it: the old screen's cookie stops working.
    third = re.search(r'/kiosk/activate/([^"]+)"', client.post(f"/kiosk/admin/{device.id}/link",
                                                                data={"csrf_token": token}).get_data(as_text=True))
    replacement = client.application.test_client()
    assert replacement.get(f"/kiosk/activate/{third.group(1)}").status_code == 302
    assert replacement.get("/kiosk/").status_code == 200
    assert screen.get("/kiosk/").status_code == 403


def test_no_new_link_for_a_revoked_or_missing_kiosk(app_ctx, client, make_member) -> None:
    make_member("admin@example.org", role="admin")
    device, _ = kiosk_service.register_kiosk("front", datetime.now(UTC))
    device.revoked = True
    db.session.commit()
    login(client, "admin@example.org")
    token = csrf_token(client, "/kiosk/admin")
    resp = client.post(f"/kiosk/admin/{device.id}/link", data={"csrf_token": token})
    assert resp.status_code == 409 and "register a new kiosk" in resp.get_data(as_text=True)
    assert client.post("/kiosk/admin/999999/link", data={"csrf_token": token}).status_code == 404


def test_only_one_of_several_simultaneous_openings_wins(app, app_ctx) -> None:
    """Six screens open the same link at once through a real threaded server: exactly one becomes the kiosk."""
    import threading
    import urllib.error
    import urllib.request

    from tests.support.live_server import LiveServer

    _, token = kiosk_service.register_kiosk("front", datetime.now(UTC))
    db.session.commit()

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    server = LiveServer(app).start()
    start = threading.Barrier(6)
    codes: list[int] = []

    def open_link() -> None:
        start.wait()
        try:
            codes.append(opener.open(f"{server.url}/kiosk/activate/{token}", timeout=20).status)
        except urllib.error.HTTPError as err:
            codes.append(err.code)

    threads = [threading.Thread(target=open_link) for _ in range(6)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    finally:
        server.stop()
    assert sorted(codes) == [302, 410, 410, 410, 410, 410]
