"""The browser-test fixtures every Chromium test shares: the app on a live port and Debian's chromium.

Loaded for the whole suite from the root conftest (`pytest_plugins`); a test module only asks for them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from tests.support.live_server import CHROMIUM, CHROMIUM_ARGS, LiveServer


@pytest.fixture
def server(app: Flask) -> Iterator[LiveServer]:
    srv = LiveServer(app).start()
    yield srv
    srv.stop()


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
