"""Bad input to the pages is a 4xx page with the reason, never a 500: ids past 2^63 in any path, booking
lengths of a trillion minutes, dates near year 1 or 9999 (also the machine page's ?week=), NaN in number
fields, NUL in a URL; and a 405 says which methods there are."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from fablab.extensions import db
from fablab.models.scheduling import EffortTask
from tests.bookings.conftest import open_machine  # noqa: F401  (a fixture: a machine open around the clock)
from tests.conftest import csrf_token, login

HX = {"HX-Request": "true"}


@pytest.fixture
def ada(client, make_member):
    make_member("ada@example.org", role="admin")
    login(client, "ada@example.org")
    return client


@pytest.mark.parametrize("n", [2**31, 2**63, 2**64])
@pytest.mark.parametrize("path", ["/bookings/{n}", "/designs/{n}", "/designs/{n}/files/1/thumb", "/designs/1/files/{n}",
                                  "/designs/{n}/download.zip", "/scheduling/windows/{n}", "/admin/members/{n}",
                                  "/scheduling/members/{n}/contributions"])
def test_ids_past_the_database_range_are_404_pages(ada, path, n) -> None:
    resp = ada.get(path.format(n=n))
    assert resp.status_code == 404
    assert "<html" in resp.get_data(as_text=True).lower()


@pytest.mark.parametrize("n", [2**31, 2**63, 2**64, 0])
@pytest.mark.parametrize("path", ["/bookings/{n}/cancel", "/tasks/{n}/claim", "/usage/rules/{n}/done",
                                  "/admin/qualifications/{n}/revoke", "/account/tokens/{n}/revoke"])
def test_posts_to_ids_out_of_range_are_404(ada, path, n) -> None:
    token = csrf_token(ada, "/")
    assert ada.post(path.format(n=n), data={"csrf_token": token}).status_code == 404


@pytest.mark.parametrize("minutes", ["1000000000000", "1e12", "nan", "-30", "0", "٩٠"])
def test_booking_minutes_out_of_range(ada, open_machine, minutes) -> None:  # noqa: F811
    open_machine("laser-1")
    token = csrf_token(ada, "/machines/laser-1")
    resp = ada.post("/machines/laser-1/book", headers=HX,
                    data={"csrf_token": token, "start": "2030-01-07T10:00", "minutes": minutes})
    assert resp.status_code == 400
    assert "minutes" in resp.get_data(as_text=True)


@pytest.mark.parametrize("start", ["0001-01-01T00:00", "0001-01-01T00:00+01:00", "9999-12-31T23:30",
                                   "9999-12-31T23:59:59-01:00"])
def test_booking_start_near_year_1_or_9999(ada, open_machine, start) -> None:  # noqa: F811
    open_machine("laser-1")
    assert ada.get("/machines/laser-1/book", query_string={"start": start}, headers=HX).status_code == 400
    token = csrf_token(ada, "/machines/laser-1")
    resp = ada.post("/machines/laser-1/book", headers=HX, data={"csrf_token": token, "start": start, "minutes": "60"})
    assert resp.status_code == 400


@pytest.mark.parametrize("week", ["9999-12-31", "0001-01-01", "2026-02-30", "x"])
def test_machine_page_week_out_of_range(ada, open_machine, week) -> None:  # noqa: F811
    open_machine("laser-1")
    assert ada.get(f"/machines/laser-1?week={week}").status_code == 400
    assert ada.get(f"/machines/laser-1/week?week={week}", headers=HX).status_code == 400


@pytest.mark.parametrize(("field", "value"), [("start", "0001-01-01T00:00"), ("end", "9999-12-31T23:59")])
def test_block_form_years_near_1_and_9999(ada, open_machine, field, value) -> None:  # noqa: F811
    open_machine("laser-1")
    token = csrf_token(ada, "/machines/laser-1/block")
    data = {"csrf_token": token, "start": "2030-01-07T10:00", "end": "2030-01-07T12:00", "reason": "service",
            field: value}
    resp = ada.post("/machines/laser-1/block", data=data)
    assert resp.status_code == 422
    assert "between the years" in resp.get_data(as_text=True)


@pytest.mark.parametrize(("field", "value"), [("base_hours", "nan"), ("rise_per_day", "NaN"), ("max_factor", "inf"),
                                              ("base_hours", "-inf")])
def test_nan_in_number_fields_is_refused_on_the_form(ada, field, value) -> None:
    token = csrf_token(ada, "/tasks/new")
    data = {"csrf_token": token, "title": "Clean the laser bed", "kind": "cleaning", "machine": "",
            "base_hours": "1.5", "people_needed": "1", "rise_per_day": "0.1", "max_factor": "2", field: value}
    resp = ada.post("/tasks/new", data=data)
    assert resp.status_code == 422
    assert "A number, such as 1.5." in resp.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(EffortTask)) == 0


def test_nan_in_the_waitlist_form(ada, open_machine) -> None:  # noqa: F811
    open_machine("laser-1")
    token = csrf_token(ada, "/scheduling/waitlist")
    resp = ada.post("/scheduling/waitlist", data={"csrf_token": token, "machine": "laser-1", "kind": "any",
                                                  "min_hours": "nan"})
    assert resp.status_code in (200, 422) and "A number, such as 1.5." in resp.get_data(as_text=True)


def test_dead_letter_ids_past_the_range(ada) -> None:
    token = csrf_token(ada, "/admin/dead-letters")
    assert ada.post("/admin/dead-letters", data={"csrf_token": token, "id": str(2**64)}).status_code == 400


@pytest.mark.parametrize("url", ["/machines/laser%00-1", "/designs?q=%00", "/machines/laser-1?week=%00"])
def test_nul_in_the_url_is_400(ada, open_machine, url) -> None:  # noqa: F811
    open_machine("laser-1")
    assert ada.get(url).status_code == 400


def test_405_page_names_the_allowed_methods(ada) -> None:
    resp = ada.put("/bookings")
    assert resp.status_code == 405
    assert "GET" in resp.headers["Allow"]
