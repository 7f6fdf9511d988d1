"""Find a time on the web: the earliest slots the member may book, on one machine or any of a type."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from fablab.domain import policy as pol
from fablab.models.types import utcnow
from fablab.services import bookings as svc
from fablab.services import windows as window_service
from tests.conftest import login
from tests.planner.conftest import at, soon

pytestmark = pytest.mark.dates


@pytest.fixture
def lasers(machine, make_member, qualified):
    a = machine("laser-a", name="Laser A")
    b = machine("laser-b", name="Laser B")
    k = machine("laser-k", name="Laser K", max_minutes=60)
    ada = make_member("ada@example.org", name="Ada")
    bo = make_member("bo@example.org", name="Bo")
    for m in (a, b, k):
        qualified(ada, m)
        qualified(bo, m)
    return {"a": a, "b": b, "k": k, "ada": ada, "bo": bo}


def _results(page: str) -> list[tuple[str, str]]:
    return re.findall(r'<li data-machine="([^"]+)">\s*<strong>([^<]+)</strong>', page)


def test_earliest_slots_on_any_machine_of_the_type(client, lasers) -> None:
    day = soon(1)
    # Laser A is taken all of tomorrow from 08:00; Laser B is free. From tomorrow 08:00, B comes first.
    svc.create_booking(lasers["bo"], lasers["a"], at(day, 8), at(day, 12))
    login(client, "ada@example.org")
    resp = client.get(f"/find?what=type:laser_cutter&minutes=120&from={day.isoformat()}T08:00")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200
    found = _results(page)
    assert found[0][0] == "laser-b" and "08:00–10:00" in found[0][1]
    assert ("laser-a", f"{at(day, 12).astimezone(svc.lab_tz()):%a %d %b, %H:%M}–14:00") in found
    # Laser K allows an hour at most: named, with the reason, instead of silently missing
    assert "<strong>Laser K</strong>: Max 1 h per booking" in page
    # "Book" opens the machine page's calendar on that day with the start
    book = re.search(r'<a class="button primary" href="(/machines/laser-b\?[^"]+)">Book</a>', page).group(1)
    assert f"week={day.isoformat()}" in book and "start=" in book
    assert client.get(book.replace("&amp;", "&")).status_code == 200


def test_one_machine_and_the_members_own_limits(client, machine, make_member, qualified) -> None:
    printer = machine("printer-1", type_slug="3d_printer", name="Printer", max_future_bookings=1)
    ada = make_member("ada@example.org")
    qualified(ada, printer)
    day = soon(2)
    svc.create_booking(ada, printer, at(day, 10), at(day, 11))
    login(client, "ada@example.org")
    page = client.get("/find?what=machine:printer-1&minutes=60").get_data(as_text=True)
    assert _results(page) == []
    assert "No time found that you may book" in page and "upcoming bookings here (max 1)" in page


def test_not_qualified_is_a_reason(client, lasers, make_member) -> None:
    make_member("new@example.org")
    login(client, "new@example.org")
    page = client.get("/find?what=type:laser_cutter&minutes=60").get_data(as_text=True)
    assert _results(page) == [] and page.count("You need a qualification") == 3


def test_request_windows_are_respected(client, machine, make_member, qualified) -> None:
    laser = machine("laser-w", name="Window Laser", mode="window")
    ada = make_member("ada@example.org")
    qualified(ada, laser)
    now = utcnow()
    p0 = pol.local_midnight(soon(2), svc.lab_tz())
    window_service.open_window(laser, None, now, period_start=p0, period_end=p0 + timedelta(days=1),
                               closes_at=now + timedelta(hours=1))
    login(client, "ada@example.org")
    local_p0 = p0.astimezone(svc.lab_tz())
    page = client.get(f"/find?what=machine:laser-w&minutes=60&from={local_p0:%Y-%m-%dT%H:%M}").get_data(as_text=True)
    first = _results(page)[0][1]
    assert f"{soon(3):%a %d %b}, 00:00" in first  # the window's day goes to the draw, not to find-a-time


@pytest.mark.parametrize("query,message", [
    ("what=type:laser_cutter&minutes=lots", "Choose how long"),
    ("what=type:laser_cutter&minutes=0", "between 1 minute"),
    ("what=machine:nope&minutes=60", "no machine or machine type called “nope”"),
    ("what=banana&minutes=60", "Choose a machine or a type"),
    ("what=type:laser_cutter&minutes=60&from=tonight", "not a date and time"),
])
def test_bad_questions_are_refused_in_the_page(client, lasers, query, message) -> None:
    login(client, "ada@example.org")
    resp = client.get(f"/find?{query}")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400 and message in page and 'id="find-form"' in page


def test_the_empty_form(client, lasers) -> None:
    login(client, "ada@example.org")
    page = client.get("/find").get_data(as_text=True)
    assert 'value="type:laser_cutter"' in page and 'value="machine:laser-a"' in page and "Earliest" not in page
