"""'Made here': linked to my bookings, counted per machine, shown on the design page."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from fablab.extensions import db
from fablab.models import Booking
from fablab.models.designs import Design, DesignMade
from fablab.models.types import utcnow
from fablab.services import design_discovery as discovery
from fablab.services import designs as svc
from tests.conftest import csrf_token, login

pytestmark = pytest.mark.dates  # runs once per frozen clock (tests/support/clock.py)


def _booking(member, machine, hours_ago: float, status: str = "completed", now: datetime | None = None) -> Booking:
    # One `now` per test: bookings meant to touch must not overlap by the microseconds between two clock reads.
    start = (now or utcnow()) - timedelta(hours=hours_ago)
    b = Booking(member_id=member.id, machine_id=machine.id, start_at=start, end_at=start + timedelta(hours=1),
                status=status)
    db.session.add(b)
    db.session.commit()
    return b


def test_record_made_rules_and_counts(app_ctx, make_member, make_machine, make_design) -> None:
    design = make_design()
    ada, bo = make_member(name="Ada"), make_member(name="Bo")
    p1, p2 = make_machine("prusa-1", name="Prusa 1"), make_machine("prusa-2", name="Prusa 2")
    b1, b2, b3 = _booking(ada, p1, 5), _booking(ada, p2, 30), _booking(ada, p1, 50)
    discovery.record_made(design, ada, booking=b1)
    discovery.record_made(design, ada, booking=b2)
    discovery.record_made(design, ada, booking=b3)
    discovery.record_made(design, bo, usage_session_id=4711, machine=p2)
    with pytest.raises(svc.DesignError) as err:
        discovery.record_made(design, ada, booking=b1)
    assert err.value.status == 409
    with pytest.raises(svc.DesignError) as err:
        discovery.record_made(design, bo, booking=_booking(ada, p1, 70))
    assert err.value.status == 403
    with pytest.raises(svc.DesignError, match="not started"):
        discovery.record_made(design, ada, booking=_booking(ada, p1, -3, status="confirmed"))
    with pytest.raises(svc.DesignError, match="not used"):
        discovery.record_made(design, ada, booking=_booking(ada, p1, 90, status="cancelled"))
    with pytest.raises(svc.DesignError, match="which booking"):
        discovery.record_made(design, ada)

    counts = discovery.made_by_machine(design)
    assert [(c.machine_name, c.count) for c in counts] == [("Prusa 1", 2), ("Prusa 2", 2)]
    assert db.session.get(Design, design.id).made_count == 4
    assert db.session.query(DesignMade).filter_by(usage_session_id=4711).one().machine_id == p2.id


def test_i_made_this_form_links_one_of_my_bookings(app, client, make_member, make_machine, make_design) -> None:
    design = make_design()
    ada = make_member("ada@example.org")
    other = make_member("other@example.org")
    laser = make_machine("laser-1", name="Big laser")
    now = utcnow()
    mine = _booking(ada, laser, 2, now=now)
    theirs = _booking(other, laser, 3, now=now)
    _booking(ada, laser, -5, status="confirmed", now=now)  # in the future: not offered
    login(client, "ada@example.org")
    page = client.get(f"/designs/{design.id}").get_data(as_text=True)
    offered = re.findall(r'<option[^>]*value="(\d+)"', page)
    assert offered == [str(mine.id)]
    token = csrf_token(client, f"/designs/{design.id}")
    resp = client.post(f"/designs/{design.id}/made", data={"booking": theirs.id, "csrf_token": token})
    assert resp.status_code == 403
    resp = client.post(f"/designs/{design.id}/made", data={"booking": mine.id, "note": "PLA, 0.2 mm",
                                                            "csrf_token": token})
    assert resp.status_code == 302
    page = client.get(f"/designs/{design.id}").get_data(as_text=True)
    made = page[page.index('id="made-here"'):]
    assert "Made 1 time in this lab" in made and "Big laser: 1" in made
    row = db.session.query(DesignMade).one()
    assert row.booking_id == mine.id and row.member_id == ada.id and row.note == "PLA, 0.2 mm"
