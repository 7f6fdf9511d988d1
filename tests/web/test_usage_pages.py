"""Who used a machine, as each role sees it: staff see names and member numbers (linked to the member's
page), a member sees their own use as "you" and others unnamed unless the lab chose to show names."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fablab.extensions import db
from fablab.models import Role
from fablab.models.types import utcnow
from fablab.models.usage import UsageSession
from tests.conftest import login


@pytest.fixture
def used(make_member, make_machine):
    laser = make_machine("laser-1", name="Laser One")
    ada = make_member("ada@example.org", name="Ada Lovelace")
    bo = make_member("bo@example.org", name="Bo Berg")
    steward = make_member("st@example.org", name="Stew Ard", role=Role.STEWARD)
    now = utcnow()
    for i, m in enumerate((ada, bo)):
        start = now - timedelta(hours=5 - 2 * i)
        db.session.add(UsageSession(key=f"s-{i}", machine_id=laser.id, member_id=m.id, source="event",
                                    start_at=start, end_at=start + timedelta(hours=1), duration_s=3600.0,
                                    open=False, unbooked=True))
    db.session.commit()
    return {"ada": ada, "bo": bo, "steward": steward}


def test_staff_see_names_and_member_numbers_linked(client, used) -> None:
    login(client, "st@example.org")
    ada, bo = used["ada"], used["bo"]
    for path in ("/usage/machines/laser-1", "/usage/unbooked"):
        page = client.get(path).get_data(as_text=True)
        for m in (ada, bo):
            assert f'href="/admin/members/{m.id}">{m.name} ({m.member_no})</a>' in page, path
        assert f"member #{ada.id}" not in page


def test_member_sees_self_as_you_and_others_unnamed(app, client, used) -> None:
    login(client, "ada@example.org")
    page = client.get("/usage/machines/laser-1").get_data(as_text=True)
    assert ">you<" in page and "a member" in page
    assert "Bo Berg" not in page and str(used["bo"].member_no) not in page
    assert "Ada Lovelace" not in page.split("<h2>Sessions", 1)[1]  # her own row says "you"
    app.config["FABLAB_SHOW_MEMBER_NAMES"] = True
    try:
        page = client.get("/usage/machines/laser-1").get_data(as_text=True)
        assert "Bo Berg" in page
        assert "/admin/members/" not in page  # a name, not a link to a page she may not open
        assert str(used["bo"].member_no) not in page
    finally:
        app.config["FABLAB_SHOW_MEMBER_NAMES"] = False
