"""A qualification lapsed by disuse (the type's InductionRule) is refused by the booking rules as expired;
using the type within the limit keeps it valid."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fablab.domain import inductions as ind
from fablab.extensions import db
from fablab.models.inductions import InductionRule
from fablab.models.usage import UsageSession
from fablab.services import bookings as booking_service
from fablab.services import machines as machine_service
from tests.inductions.conftest import soon


def _qualified_long_ago(make_member, laser, used_days_ago: int | None):
    member = make_member()
    q = machine_service.grant(member, by=None, machine_type=laser.machine_type)
    db.session.flush()
    now = datetime.now(UTC)
    q.granted_at = now - timedelta(days=400)
    if used_days_ago is not None:
        start = now - timedelta(days=used_days_ago)
        db.session.add(UsageSession(key=f"u-{member.id}", machine_id=laser.id, member_id=member.id, start_at=start,
                                    end_at=start + timedelta(hours=1), duration_s=3600, source="event", open=False))
    db.session.commit()
    return member, q


def test_disused_qualification_refuses_booking_as_expired(app_ctx, make_member, laser) -> None:
    db.session.add(InductionRule(machine_type_id=laser.type_id, disuse_months=6))
    member, q = _qualified_long_ago(make_member, laser, used_days_ago=300)
    start, _ = soon(1, 1)
    with pytest.raises(booking_service.BookingRejected) as exc:
        booking_service.create_booking(member, laser, start, start + timedelta(hours=1))
    assert exc.value.code == "qualification_expired"
    state = machine_service.qualification_state(member, laser, datetime.now(UTC))
    last_used = datetime.now(UTC) - timedelta(days=300) + timedelta(hours=1)
    assert not state.qualified and state.expired_at is not None
    assert abs(state.expired_at - ind.add_months(last_used, 6)) < timedelta(minutes=1)  # lapsed 6 months after use


def test_recent_use_keeps_it_valid_and_no_rule_no_lapse(app_ctx, make_member, laser) -> None:
    member, _ = _qualified_long_ago(make_member, laser, used_days_ago=None)
    start, _ = soon(1, 1)
    assert booking_service.create_booking(member, laser, start, start + timedelta(hours=1)).id  # no rule: valid
    db.session.add(InductionRule(machine_type_id=laser.type_id, disuse_months=6))
    user, _ = _qualified_long_ago(make_member, laser, used_days_ago=30)
    later = start + timedelta(hours=3)
    assert booking_service.create_booking(user, laser, later, later + timedelta(hours=1)).id
    assert not machine_service.qualification_state(member, laser, datetime.now(UTC)).qualified  # now lapsed
