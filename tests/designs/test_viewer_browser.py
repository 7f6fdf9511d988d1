"""The design page in a real Chromium (Debian's, driven by Playwright) against the real app server:
sign in, open a design with an STL, wait until the three.js viewer reports it is ready, save a screenshot."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator

import pytest
from flask import Flask
from werkzeug.serving import make_server

from fablab.extensions import db

from .conftest import data

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--use-gl=swiftshader", "--enable-unsafe-swiftshader",
                 "--disable-background-networking"]

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is not installed")]


class _Server:
    """The test app behind werkzeug's threaded server on a free local port."""

    def __init__(self, app: Flask) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self._srv = make_server("127.0.0.1", port, app, threaded=True)
        self._thread = threading.Thread(target=self._srv.serve_forever, name="design-test-server", daemon=True)

    def __enter__(self) -> _Server:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._srv.shutdown()
        self._thread.join(timeout=10)
        self._srv.server_close()


@pytest.fixture
def server(app: Flask) -> Iterator[_Server]:
    with _Server(app) as srv:
        yield srv


def test_design_page_shows_the_stl_in_the_3d_viewer(app_ctx, server, make_member, make_design, tmp_path) -> None:
    from playwright.sync_api import sync_playwright

    ada = make_member("ada@example.org", name="Ada")
    design = make_design(author=ada, title="Viewer part", files=[("part.stl", data("part_binary.stl")),
                                                                 ("plate.svg", data("plate.svg"))])
    db.session.commit()
    shot = tmp_path / "design-viewer.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.goto(f"{server.url}/login")
            page.fill("input[name=email]", "ada@example.org")
            page.fill("input[name=password]", "correct-horse-9")
            page.click("button[type=submit]")
            page.wait_for_url(lambda url: "/login" not in url)
            page.goto(f"{server.url}/designs/{design.id}")
            viewer = page.locator(".design-viewer")
            viewer.wait_for(state="attached")
            page.wait_for_selector('.design-viewer[data-viewer-state="ready"]', timeout=30_000)
            assert viewer.get_attribute("data-viewer-triangles") == "112"
            assert viewer.locator("canvas").count() == 1
            assert page.locator(".svg-inline svg").count() == 1
            assert page.get_by_role("link", name="Fork this design").is_visible()
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert shot.stat().st_size > 10_000
    print(f"design viewer screenshot: {shot}")
