"""The fairness review reads as a page, not a dump: sections linked from the summary at the top, fractions as
percentages, weeks as local days, the numbers behind each chart folded under it, a part week marked in the
chart's legend. The CSV exports keep the raw figures (tests/fairness)."""

from __future__ import annotations

import re
from datetime import timedelta

from fablab.extensions import db
from fablab.models.types import utcnow
from tests.conftest import login
from tests.fairness.conftest import book, machine, members  # noqa: F401 - fixtures used by name


def test_review_is_readable(client, machine, members, make_member) -> None:  # noqa: F811
    laser = machine("laser")
    a, c = members(laser, 2)
    a.name, c.name = "Alice Heavy", "Carl Light"
    admin = make_member(role="admin", name="Ada Admin")
    now = utcnow()
    day = (now - timedelta(days=3)).replace(hour=12, minute=0, second=0, microsecond=0)
    book(a, laser, day - timedelta(days=1), 3)
    book(c, laser, day, 1)
    db.session.commit()
    login(client, admin.email)
    # A period starting on a Wednesday: its first week is only partly in it.
    first = (now - timedelta(days=20)).date()
    first -= timedelta(days=(first.weekday() - 2) % 7)
    page = client.get(f"/fairness?start={first.isoformat()}&end={now.date().isoformat()}").get_data(as_text=True)

    toc = page.split('class="fair-toc', 1)[1].split("</nav>", 1)[0]
    anchors = re.findall(r'href="#([a-z]+)"', toc)
    assert len(anchors) >= 6
    for a_id in anchors:
        assert f'id="{a_id}"' in page, a_id
    assert page.index('class="fair-toc') < page.index('id="lorenz"')  # the links come first

    members_table = page.split('id="table-members"', 1)[1].split("</table>", 1)[0]
    assert re.search(r"<td>\d+ %</td>", members_table), "satisfaction as a percentage"
    assert not re.search(r"<td>0\.\d{3}</td>", members_table), "no raw fractions on the page"
    weeks_table = page.split('id="table-weeks"', 1)[1].split("</table>", 1)[0]
    assert re.search(r"<td>[A-Z][a-z]{2} \d\d [A-Z][a-z]{2} \d{4}</td>", weeks_table)
    assert not re.search(r"<td>\d{4}-\d\d-\d\d", weeks_table), "no ISO dates on the page"
    assert page.count('<details class="fair-numbers">') >= 4  # tables behind charts are folded

    weeks_chart = page.split('id="weeks"', 1)[1].split("</svg>", 1)[0]
    assert "part week" in weeks_chart and "of 7 days in the period" in weeks_chart
    assert "marked *" not in weeks_chart
