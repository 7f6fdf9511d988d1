"""Property tests of the whole API against its own OpenAPI document (schemathesis): no answer is a 5xx,
every answer fits the documented statuses, content types, headers and schemas, and a method an operation
does not have is a 405 with Allow. Data that fits the document and data that breaks it are both sent, as a
member and as an admin in turn. Bounded and derandomized: a run is reproducible and short."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis import checks as st_checks
from schemathesis.specs.openapi import checks as oa_checks

from fablab.api import register_routes
from fablab.api.openapi import PATHS
from fablab.domain.policy import WEEKDAYS
from fablab.extensions import db
from fablab.models import Role
from fablab.models.types import utcnow
from fablab.services import bookings as booking_service
from fablab.services.members import create_api_token
from tests.support.clock import cheap_password_hashing

register_routes()  # fills PATHS (create_app does the same; importing twice is harmless)
OPERATIONS = sorted((path, method) for path, ops in PATHS.items() for method in ops)
MAX_EXAMPLES = 25

CHECKS = [st_checks.not_a_server_error, oa_checks.status_code_conformance, oa_checks.content_type_conformance,
          oa_checks.response_headers_conformance, oa_checks.response_schema_conformance]


@pytest.fixture(scope="module")
def api_schema(app: Flask) -> Any:
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


@pytest.fixture
def tokens(make_member: Any, make_machine: Any) -> Iterator[list[dict[str, str]]]:
    """A member's and an admin's token (generated requests are sent as each in turn), a machine to find and a
    booking of each, so the listings answer with rows the document's schema has to describe."""
    machine = make_machine("laser-1", policy={"qualification_required": False, "max_future_bookings": None,
                                              "opening_hours": {d: [["00:00", "24:00"]] for d in WEEKDAYS}})
    out = []
    start = (utcnow() + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    with cheap_password_hashing():
        for role in (Role.MEMBER, Role.ADMIN):
            member = make_member(role=role)
            # identity: schemathesis' WSGI transport reads the body raw, and answers are compressed when asked
            out.append({"Authorization": f"Bearer {create_api_token(member)}", "Accept-Encoding": "identity"})
            db.session.commit()
            booking_service.create_booking(member, machine, start, start + timedelta(hours=1), source="api")
            start += timedelta(hours=2)
    db.session.commit()
    yield out


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m.upper()} {p}" for p, m in OPERATIONS])
def test_operation_conforms_to_the_document(api_schema: Any, tokens: list[dict[str, str]], path: str, method: str,
                                            mode: GenerationMode) -> None:
    operation = api_schema[path][method.upper()]
    op = PATHS[path][method]
    if mode is GenerationMode.NEGATIVE and not (op.get("parameters") or op.get("requestBody")):
        pytest.skip("nothing to send that breaks the document")

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        sent.append(case)
        case.call_and_validate(headers=tokens[len(sent) % 2], checks=CHECKS)  # member and admin in turn

    sent: list[Any] = []
    run()


def test_methods_an_operation_lacks_are_405_with_allow(client: Any, tokens: list[dict[str, str]]) -> None:
    """schemathesis checks this only in its coverage phase; here every documented path is tried with every
    method it does not document, as an admin (routing answers before any role or resource check)."""
    for path, ops in PATHS.items():
        url = "/api/v1" + re.sub(r"\{slug\}", "laser-1", re.sub(r"\{\w+_id\}", "1", path))
        documented = {m.upper() for m in ops}
        for method in {"GET", "POST", "PUT", "PATCH", "DELETE"} - documented:
            resp = client.open(url, method=method, headers=tokens[1])
            assert resp.status_code == 405, (method, url)
            assert resp.json["error"]["code"] == "method_not_allowed"
            allowed = set(resp.headers["Allow"].split(", "))
            assert allowed - {"HEAD", "OPTIONS"} == documented, (method, url, allowed)
