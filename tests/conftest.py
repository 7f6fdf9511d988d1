"""Test fixtures: a real database (SQLite file, or PostgreSQL when FABLAB_TEST_DATABASE_URL is set),
migrated from empty to head once per session, emptied after every test."""

from __future__ import annotations

import contextvars
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, has_app_context
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from fablab import create_app
from fablab.extensions import db
from fablab.models import Machine, MachineType, Member, Role

# The Chromium tests' shared fixtures (`server`, `browser`).
pytest_plugins = ["tests.support.browser", "tests.support.smtp"]

PG_URL = os.environ.get("FABLAB_TEST_DATABASE_URL")


def _pg_schema_url(base: str, schema: str) -> tuple[str, dict[str, Any]]:
    # A private schema per test session: parallel runs and leftovers never collide.
    return base, {"connect_args": {"options": f"-csearch_path={schema},public"}}


@pytest.fixture(scope="session")
def db_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    instance = tmp_path_factory.mktemp("instance")
    cfg: dict[str, Any] = {
        "TESTING": True,
        "INSTANCE_PATH": str(instance),
        "SECRET_KEY": "test-" + uuid.uuid4().hex,
        "FABLAB_UPLOAD_DIR": str(instance / "uploads"),
    }
    if PG_URL:
        schema = f"t_{uuid.uuid4().hex[:12]}"
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS btree_gist"))
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        url, opts = _pg_schema_url(PG_URL, schema)
        cfg["SQLALCHEMY_DATABASE_URI"] = url
        cfg["SQLALCHEMY_ENGINE_OPTIONS"] = opts
        yield cfg
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
    else:
        cfg["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{instance / 'test.db'}"
        yield cfg


class IsolatedClient(FlaskClient):
    """Each request runs in a fresh context, as in a real server: a test's own app context (its
    `g`, its database session) must not leak into the request it makes."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        test_side = has_app_context()
        if test_side:
            # End the test's own transaction: on SQLite (WAL) it would keep reading an old snapshot.
            db.session.commit()
        resp = contextvars.Context().run(super().open, *args, **kwargs)
        if test_side:
            db.session.expire_all()
        return resp


@pytest.fixture(scope="session")
def app(db_config: dict[str, Any]) -> Iterator[Flask]:
    app = create_app(dict(db_config))
    app.test_client_class = IsolatedClient
    with app.app_context():
        from fablab.cli import upgrade_db

        upgrade_db()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _clean_db(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "app" not in request.fixturenames:
        return
    app: Flask = request.getfixturevalue("app")
    with app.app_context():
        db.session.rollback()
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
        db.session.commit()
        db.session.remove()


@pytest.fixture
def app_ctx(app: Flask) -> Iterator[Flask]:
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def make_member(app_ctx: Flask) -> Callable[..., Member]:
    from fablab.services import members as member_service

    def make(email: str | None = None, role: Role | str = Role.MEMBER, password: str = "correct-horse-9",
             name: str | None = None, badge: str | None = None, pin: str | None = None) -> Member:
        email = email or f"m{uuid.uuid4().hex[:8]}@example.org"
        m = member_service.create_member(email, name or email.split("@")[0], role, password)
        if badge:
            member_service.set_badge(m, badge)
        if pin:
            member_service.set_pin(m, pin)
        db.session.commit()
        return m

    return make


@pytest.fixture
def make_machine(app_ctx: Flask) -> Callable[..., Machine]:
    from sqlalchemy import select

    def make(slug: str | None = None, type_slug: str = "laser_cutter", **kw: Any) -> Machine:
        mtype = db.session.scalar(select(MachineType).where(MachineType.slug == type_slug))
        if mtype is None:
            mtype = MachineType(slug=type_slug, name=type_slug.replace("_", " ").title())
            db.session.add(mtype)
        slug = slug or f"m-{uuid.uuid4().hex[:6]}"
        machine = Machine(slug=slug, name=kw.pop("name", slug.title()), machine_type=mtype, **kw)
        db.session.add(machine)
        db.session.commit()
        return machine

    return make


def login(client: FlaskClient, email: str, password: str = "correct-horse-9") -> Any:
    """Sign in through the real form, CSRF token included."""
    import re

    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token, "login form has a CSRF token"
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token.group(1)})


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    import re

    page = client.get(path).get_data(as_text=True)
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'"X-CSRFToken": "([^"]+)"', page)
    assert found, f"no CSRF token on {path}"
    return found.group(1)


ROOT = Path(__file__).resolve().parent.parent


# --- Date matrix (tests/support/clock.py) ------------------------------------------------------------
# Tests marked `dates` run once per frozen clock ([clock=dst-spring-0130] … [clock=today]); with
# FABLAB_TEST_CLOCK=<name> every test runs once under that clock. The clock is an autouse fixture of this
# root conftest, so it is set before any function-scoped fixture (members, machines, bookings) is made.

import contextlib  # noqa: E402

from tests.support import clock as _clock  # noqa: E402


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if _clock.env_clock() is None and metafunc.definition.get_closest_marker(_clock.MARK) is not None:
        names = list(_clock.CLOCKS)
        metafunc.parametrize("_date_clock", names, ids=[_clock.clock_id(n) for n in names], indirect=True)


@pytest.fixture(autouse=True)
def _date_clock(request: pytest.FixtureRequest) -> Iterator[str | None]:
    param = getattr(request, "param", None)
    name = param or _clock.env_clock()
    if name is None:
        yield None
        return
    with contextlib.ExitStack() as stack:
        stack.enter_context(_clock.frozen(name))
        if param is not None and param != _clock.TODAY:
            stack.enter_context(_clock.cheap_password_hashing())  # the matrix tests dates, not argon2's cost
        yield name

# --- end of the date matrix ----------------------------------------------------------------------------
