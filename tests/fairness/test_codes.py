"""The pure fairness rules name statuses and kinds by their stored values; they are the models' values."""

from __future__ import annotations

from fablab.domain.fairness import period as fp
from fablab.models import BookingKind, BookingStatus
from fablab.models.scheduling import RequestStatus


def test_the_domain_codes_are_the_stored_values() -> None:
    assert {fp.REQUESTED, fp.CONFIRMED, fp.CHECKED_IN, fp.COMPLETED, fp.CANCELLED, fp.NO_SHOW, fp.RELEASED} == {
        s.value for s in BookingStatus}
    assert {fp.NORMAL, fp.MAINTENANCE, fp.INDUCTION} == {k.value for k in BookingKind}
    assert set(fp.UNMET_REQUEST) == {RequestStatus.REJECTED.value, RequestStatus.WAITLISTED.value}
    assert set(fp.HELD) == set(BookingStatus) - {BookingStatus.REQUESTED, BookingStatus.CANCELLED}
