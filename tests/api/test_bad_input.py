"""Bad input to the API is a 4xx in the API's error format naming the field, never a 500: ids past 2^63,
lengths of a trillion minutes, years 1 and 9999, JSON of the wrong type, a member id that is no number."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from fablab.domain.bounded import MAX_ID
from fablab.extensions import db
from fablab.models.types import utcnow
from fablab.services.members import create_api_token
from tests.designs.conftest import make_design  # noqa: F401,F811  (a fixture: a design with a real file)

BIG = [2**31, 2**63, 2**64, 10**30]  # past PostgreSQL's INTEGER id, past 64 bits, far past


@pytest.fixture
def auth(make_member, make_machine):
    def make(role: str = "member") -> dict[str, str]:
        token = create_api_token(make_member(role=role))
        db.session.commit()
        return {"Authorization": f"Bearer {token}"}

    make_machine("laser-1")
    return make


def _error(resp, status: int, field: str | None = None) -> dict:
    assert resp.status_code == status, resp.get_data(as_text=True)
    err = resp.json["error"]
    assert err["code"] and err["message"]
    if field is not None:
        assert err["field"] == field
    return err


@pytest.mark.parametrize("n", BIG)
@pytest.mark.parametrize("path", ["/bookings/{n}", "/designs/{n}", "/designs/{n}/files/1", "/designs/1/files/{n}",
                                  "/windows/{n}"])
def test_ids_past_the_database_range_are_404(client, auth, path, n) -> None:
    resp = client.get("/api/v1" + path.format(n=n), headers=auth())
    assert _error(resp, 404)["code"] == "not_found"


@pytest.mark.parametrize("n", [2**31, 2**63, 2**64, 0])
@pytest.mark.parametrize(("method", "path"), [("DELETE", "/bookings/{n}"), ("DELETE", "/requests/{n}"),
                                              ("DELETE", "/waitlist/{n}"), ("POST", "/offers/{n}/claim"),
                                              ("POST", "/offers/{n}/decline")])
def test_an_id_out_of_range_is_404_for_every_method(client, auth, method, path, n) -> None:
    # Not 405: another method's rule matching the same pattern must not answer for an id no rule takes.
    resp = client.open("/api/v1" + path.format(n=n), method=method, headers=auth())
    assert _error(resp, 404)["code"] == "not_found"


def test_the_largest_id_is_an_ordinary_unknown_booking(client, auth) -> None:
    resp = client.get(f"/api/v1/bookings/{MAX_ID}", headers=auth())
    assert "no booking" in _error(resp, 404)["message"].lower()


def _start(days: int = 2) -> str:
    return (utcnow() + timedelta(days=days)).replace(minute=0, second=0, microsecond=0).isoformat()


@pytest.mark.parametrize("minutes", [1e12, 10**12, 2**70, -5, 0, True, "90", float("nan")])
def test_minutes_out_of_range_or_of_the_wrong_type(client, auth, minutes) -> None:
    body = {"machine": "laser-1", "start": _start(), "minutes": minutes}
    # NaN is not JSON, but Python's json writes it bare and Flask reads it back
    resp = client.post("/api/v1/bookings", json=body, headers=auth())
    _error(resp, 400, "minutes")


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00", "9999-12-31T23:59:59-01:00",
                                  "9999-12-31T23:59:59", "2026-13-01T00:00:00Z"])
@pytest.mark.parametrize("field", ["start", "end"])
def test_times_near_year_1_or_9999_are_refused(client, auth, when, field) -> None:
    body = {"machine": "laser-1", "start": _start(), "end": _start(3), field: when}
    resp = client.post("/api/v1/bookings", json=body, headers=auth())
    _error(resp, 400, field)


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
@pytest.mark.parametrize("path", ["/bookings?from={w}", "/bookings?to={w}", "/usage?from={w}", "/usage?to={w}",
                                  "/fairness?from={w}", "/fairness?to={w}", "/machines/laser-1/availability?from={w}"])
def test_query_times_near_year_1_or_9999_are_refused(client, auth, path, when) -> None:
    resp = client.get("/api/v1" + path.format(w=when.replace("+", "%2B")), headers=auth("admin"))
    _error(resp, 400)


@pytest.mark.parametrize("value", [[None, None], {"slug": "laser-1"}, 7, True, "x" * 500, "laser\x00"])
def test_machine_of_the_wrong_json_type(client, auth, value) -> None:
    resp = client.post("/api/v1/bookings", json={"machine": value, "start": _start(), "minutes": 60},
                       headers=auth())
    _error(resp, 400, "machine")


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/requests", {"machine": "laser-1", "start": _start(), "end": _start(3), "rank": [1]}, "rank"),
    ("/requests", {"machine": "laser-1", "start": _start(), "end": _start(3), "window": 2**31}, "window"),
    ("/waitlist", {"machine": "laser-1", "min_hours": "NaN"}, "min_hours"),
    ("/waitlist", {"machine": "laser-1", "kind": ["slot"]}, "kind"),
    ("/designs/{design}/forks", {"licence": "MIT", "version": 2**63}, "version"),
    ("/designs/{design}/forks", {"licence": "MIT", "title": {"a": 1}}, "title"),
])
def test_every_body_goes_through_its_schema(client, auth, make_design, path, body, field) -> None:  # noqa: F811
    design = make_design()
    db.session.commit()
    resp = client.post("/api/v1" + path.format(design=design.id), json=body, headers=auth())
    _error(resp, 400, field)


@pytest.mark.parametrize("member_id", ["abc", "1.5", "-1", "0", str(2**31), str(2**63), "١"])
def test_member_id_that_is_no_id_as_staff(client, auth, member_id) -> None:
    resp = client.get(f"/api/v1/bookings?member_id={member_id}", headers=auth("admin"))
    _error(resp, 400, "member_id")


def test_a_body_that_is_not_an_object(client, auth) -> None:
    for body in ([1, 2], "text", None):
        resp = client.post("/api/v1/bookings", json=body, headers=auth())
        assert _error(resp, 400)["code"] == "bad_json"


def test_405_names_the_allowed_methods(client, auth) -> None:
    resp = client.patch("/api/v1/bookings", headers=auth())
    assert _error(resp, 405)["code"] == "method_not_allowed"
    assert set(resp.headers["Allow"].split(", ")) >= {"GET", "POST"}
    resp = client.put("/api/v1/bookings/5", headers=auth())
    assert resp.status_code == 405 and "DELETE" in resp.headers["Allow"]


@pytest.mark.parametrize("url", ["/api/v1/machines/laser%00", "/api/v1/usage?machine=%00",
                                 "/api/v1/bookings?machine=a%00b"])
def test_nul_in_the_url_is_400(client, auth, url) -> None:
    _error(client.get(url, headers=auth()), 400)


def test_openapi_documents_ids_and_the_body_schema(client) -> None:
    from fablab.api.bookings import NEW_BOOKING

    doc = client.get("/api/v1/openapi.json").json
    op = doc["paths"]["/bookings/{booking_id}"]["get"]
    schema = op["parameters"][0]["schema"]
    assert schema == {"type": "integer", "minimum": 1, "maximum": MAX_ID}
    post = doc["paths"]["/bookings"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == NEW_BOOKING.schema()
    assert {"400", "401", "403", "404", "409", "413", "422"} <= set(post["responses"])


def test_id_regex_matches_exactly_the_range() -> None:
    from fablab.http_input import IdConverter, decimal_range_regex

    for high in (1, 9, 10, 57, 100, 999, 1000, MAX_ID):
        pattern = re.compile(f"(?:{decimal_range_regex(high)})")
        for n in [*range(0, 1200), high - 1, high, high + 1, 2**63, 2**64]:
            assert bool(pattern.fullmatch(str(n))) == (1 <= n <= high), (high, n)
        assert not pattern.fullmatch("01")
    assert re.fullmatch(IdConverter.regex, str(MAX_ID))
    assert not re.fullmatch(IdConverter.regex, str(MAX_ID + 1))
