"""The frame of every page: a top bar with only the links the visitor may open, a favicon, compressed
responses, fingerprinted static files cached for a year; and phones (360 px) with no horizontal scroll,
checked in Debian's Chromium on the demo lab (screenshots kept as test artifacts)."""

from __future__ import annotations

import gzip
import hashlib
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from fablab.demo.lab import DEMO_PASSWORD, seed
from fablab.extensions import db
from fablab.models import Role
from fablab.models.designs import Design
from tests.conftest import login
from tests.support.live_server import artifact_dir, have_chromium
from tests.support.viewport import page_extent, sign_in

STATIC = Path(__file__).resolve().parents[2] / "static"


def _nav(page: str) -> dict[str, str]:
    """The top bar's links: text -> href."""
    bar = page.split('<header class="topbar">', 1)[1].split("</header>", 1)[0]
    return {text.strip(): href for href, text in re.findall(r'<a[^>]*href="([^"]+)"[^>]*>([^<]+)</a>', bar)}


@pytest.mark.parametrize("role, expected, absent", [
    (Role.MEMBER, {"Machines", "My bookings", "My usage", "Designs"}, {"Fairness", "Members", "Admin", "Sign in"}),
    (Role.STEWARD, {"Machines", "Members"}, {"Fairness", "Admin"}),
    (Role.ADMIN, {"Machines", "Members", "Admin", "Fairness"}, set()),
])
def test_top_bar_shows_only_what_the_role_may_open(client, make_member, role, expected, absent) -> None:
    make_member("who@example.org", role=role, name="Who Ever")
    login(client, "who@example.org")
    links = _nav(client.get("/").get_data(as_text=True))
    assert expected <= set(links), links
    assert not absent & set(links), links
    for text, href in links.items():
        if text.startswith("Who Ever"):
            continue
        assert client.get(href).status_code == 200, f"{role}: the top bar links {text} ({href}), which does not open"


def test_fairness_link_for_members_when_the_lab_made_the_review_public(app, client, make_member) -> None:
    make_member("m@example.org")
    login(client, "m@example.org")
    app.config["FABLAB_REVIEW_PUBLIC"] = True
    try:
        links = _nav(client.get("/").get_data(as_text=True))
        assert "Fairness" in links and client.get(links["Fairness"]).status_code == 200
    finally:
        app.config["FABLAB_REVIEW_PUBLIC"] = False


def test_visitors_see_a_sign_in_link(client) -> None:
    links = _nav(client.get("/designs").get_data(as_text=True))
    assert links.get("Sign in", "").startswith("/login?next=/designs")
    assert "Designs" in links and "Machines" not in links
    assert "Sign in" not in _nav(client.get("/login").get_data(as_text=True))  # not on the sign-in page itself


def test_pages_are_compressed_when_the_browser_asks(client, make_member) -> None:
    make_member("m@example.org")
    login(client, "m@example.org")
    plain = client.get("/").get_data()
    resp = client.get("/", headers={"Accept-Encoding": "gzip, deflate"})
    assert resp.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in resp.headers["Vary"]
    assert len(resp.data) < len(plain) and gzip.decompress(resp.data).decode().count("Machines") >= 1
    assert client.get("/", headers={"Accept-Encoding": "gzip, deflate, br"}).headers["Content-Encoding"] == "br"
    css = client.get("/static/css/app.css", headers={"Accept-Encoding": "gzip"})
    assert css.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(css.data) == (STATIC / "css" / "app.css").read_bytes()


def test_static_urls_are_fingerprinted_and_cached_for_a_year(client) -> None:
    page = client.get("/login").get_data(as_text=True)
    url = re.search(r'href="(/static/css/app\.css\?v=([0-9a-f]+))"', page)
    assert url, "the stylesheet's URL carries its content hash"
    assert url.group(2) == hashlib.sha256((STATIC / "css" / "app.css").read_bytes()).hexdigest()[:12]
    fresh = client.get(url.group(1))
    assert fresh.status_code == 200
    assert fresh.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    for stale in ("/static/css/app.css", "/static/css/app.css?v=0123456789ab"):  # no hash, or an old one
        assert client.get(stale).headers["Cache-Control"] == "no-cache", stale


def test_favicon(client) -> None:
    page = client.get("/login").get_data(as_text=True)
    icon = re.search(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', page)
    assert icon
    resp = client.get(icon.group(1))
    assert resp.status_code == 200 and resp.mimetype == "image/svg+xml" and b"<svg" in resp.data
    ico = client.get("/favicon.ico")
    assert ico.status_code == 301 and ico.headers["Location"].startswith("/static/favicon.svg")


# --- phones, in a real browser ---------------------------------------------------------------------------

@pytest.mark.browser
@pytest.mark.skipif(not have_chromium(), reason="Debian chromium is not installed")
def test_no_horizontal_scroll_on_a_phone(app_ctx, client, browser, server, tmp_path) -> None:
    seed()
    design = db.session.scalar(select(Design).order_by(Design.id).limit(1))
    assert design is not None
    out = artifact_dir(tmp_path)
    ctx = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True,
                              device_scale_factor=2)
    page = ctx.new_page()
    wide: list[str] = []

    def check(name: str, path: str) -> None:
        resp = page.goto(server.url + path)
        assert resp is not None and resp.status == 200, f"{path}: {resp and resp.status}"
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(out / f"phone-360-{name}.png"), full_page=True)
        ext = page_extent(page)
        if ext["sw"] > 360:
            wide.append(f"{name} ({path}): {ext['sw']} px of layout on a 360 px screen")

    check("login", "/login")
    check("designs-anonymous", "/designs")
    sign_in(page, server.url, "ada@fablab.example", DEMO_PASSWORD)
    for name, path in [("machines", "/"), ("machine", "/machines/laser-epilog"), ("designs", "/designs"),
                       ("design", f"/designs/{design.id}"), ("my-bookings", "/bookings"), ("account", "/account"),
                       ("my-usage", "/usage")]:
        check(name, path)
    ctx.close()
    assert not wide, "\n".join(wide)

    # Already-compressed files (PNG thumbnails) are sent as they are.
    pngs = 0
    for d in db.session.scalars(select(Design).where(Design.thumb_key.is_not(None))):
        resp = client.get(f"/designs/{d.id}/thumb", headers={"Accept-Encoding": "gzip, br"})
        resp.close()  # the file behind it
        if resp.mimetype == "image/png":
            pngs += 1
            assert "Content-Encoding" not in resp.headers
    assert pngs, "the demo has PNG thumbnails"
