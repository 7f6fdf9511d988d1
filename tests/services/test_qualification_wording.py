"""Qualification states read as sentences on every screen (kiosk reasons, admin lists), not as codes."""

from __future__ import annotations

from datetime import UTC, datetime

from fablab.extensions import db
from fablab.models import Qualification
from fablab.services import machines as machine_service


def test_expired_and_type_wide_qualifications_read_as_sentences(make_member, make_machine) -> None:
    member = make_member()
    laser = make_machine("laser-w")
    qual = Qualification(member_id=member.id, machine_type=laser.machine_type,
                         expires_at=datetime(2026, 11, 13, 12, tzinfo=UTC))
    db.session.add(qual)
    db.session.commit()
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    state = machine_service.qualification_state(member, laser, now)
    assert not state.qualified
    assert state.label == "qualification expired on 13 Nov 2026"
    assert qual.scope_label == "every Laser Cutter"  # not "all Laser Cutter"
    valid = machine_service.qualification_state(member, laser, datetime(2026, 11, 1, tzinfo=UTC))
    assert valid.label == "qualified until 13 Nov 2026"
