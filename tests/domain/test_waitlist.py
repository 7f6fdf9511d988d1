from datetime import datetime, timedelta

from fablab.domain.allocation import Quota, SlotRequest, allocate_window
from fablab.domain.fairshare import FairShareState
from fablab.domain.waitlist import (
    EntryKind,
    FreedInterval,
    WaitlistEntry,
    can_claim,
    entries_from_allocation,
    match_entries,
    next_offers,
    order_entries,
    split_offers,
)

NOW = datetime(2026, 12, 1, 9, 0)
H = timedelta(hours=1)
M = timedelta(minutes=1)
SLOT = (datetime(2026, 12, 1, 18), datetime(2026, 12, 1, 20))
FREED = FreedInterval("laser", *SLOT)


def entry(eid, member, start=SLOT[0], end=SLOT[1], joined=NOW - 24 * H, kind=EntryKind.SLOT, **kw):
    return WaitlistEntry(eid, member, kw.pop("machine", "laser"), start, end, joined, kind, **kw)


ENTRIES = [
    entry("e-low", "low"),
    entry("e-high-late", "high", joined=NOW - H),
    entry("e-mid", "mid"),
    entry("e-other-machine", "x", machine="printer"),
    entry("e-longer", "y", end=SLOT[1] + H),  # wants more than was freed
    entry("e-any", "any", datetime(2026, 11, 30), datetime(2026, 12, 7), NOW - 2 * H, EntryKind.ANY, min_hours=1),
    entry("e-any-long", "z", datetime(2026, 11, 30), datetime(2026, 12, 7), kind=EntryKind.ANY, min_hours=3),
    entry("e-same-f-early", "early", joined=NOW - 48 * H),
]
FACTORS = {"low": 0.2, "high": 0.9, "mid": 0.5, "any": 0.5, "early": 0.5, "x": 1.0, "y": 1.0, "z": 1.0}


def test_match_specific_and_any_entries():
    got = {e.id for e in match_entries(FREED, ENTRIES)}
    assert got == {"e-low", "e-high-late", "e-mid", "e-any", "e-same-f-early"}


def test_promotion_order_f_then_join_time():
    ordered = [e.id for e in order_entries(match_entries(FREED, ENTRIES), FACTORS)]
    assert ordered == ["e-high-late", "e-same-f-early", "e-mid", "e-any", "e-low"]


def test_offers_one_at_a_time_with_hold_then_next_on_expiry():
    (first,) = next_offers(FREED, ENTRIES, FACTORS, NOW, hold=15 * M, first_come_threshold=2 * H)
    assert (first.member_id, first.expires_at, first.first_come) == ("high", NOW + 15 * M, False)
    assert can_claim(first, NOW + 10 * M)
    # while the offer is open nobody else is asked
    assert next_offers(FREED, ENTRIES, FACTORS, NOW + 10 * M, previous=[first]) == []
    later = NOW + 16 * M
    assert not can_claim(first, later)
    open_, closed = split_offers([first], later)
    assert open_ == [] and closed == [first]
    (second,) = next_offers(FREED, ENTRIES, FACTORS, later, hold=15 * M, previous=[first])
    assert second.member_id == "early"


def test_hold_never_runs_into_first_come_period():
    t = SLOT[0] - 2 * H - 5 * M
    (offer,) = next_offers(FREED, ENTRIES, FACTORS, t, hold=15 * M, first_come_threshold=2 * H)
    assert offer.expires_at == SLOT[0] - 2 * H


def test_close_to_start_everyone_matching_is_offered_first_come():
    t = SLOT[0] - 30 * M
    offers = next_offers(FREED, ENTRIES, FACTORS, t, first_come_threshold=2 * H)
    assert [o.member_id for o in offers] == ["high", "early", "mid", "any", "low"]
    assert all(o.first_come and o.expires_at == SLOT[1] for o in offers)
    # the "any slot" entry is offered the freed interval itself
    any_offer = next(o for o in offers if o.member_id == "any")
    assert (any_offer.start, any_offer.end) == SLOT
    # asking again adds nobody
    assert next_offers(FREED, ENTRIES, FACTORS, t + M, first_come_threshold=2 * H, previous=offers) == []


def test_declined_offer_moves_on_and_past_time_offers_nothing():
    (first,) = next_offers(FREED, ENTRIES, FACTORS, NOW)
    declined = first.__class__(**{**first.__dict__, "declined": True})
    (second,) = next_offers(FREED, ENTRIES, FACTORS, NOW + M, previous=[declined])
    assert second.member_id == "early"
    assert next_offers(FREED, ENTRIES, FACTORS, SLOT[1]) == []


def test_allocation_losers_join_in_draft_order():
    slot = SlotRequest
    reqs = [slot(i, m, "laser", *SLOT) for i, m in enumerate(["a", "b", "c"])]
    result = allocate_window(reqs, FairShareState({"b": 1.0, "c": 3.0}, {"a": 1, "b": 1, "c": 1}), bytes(32),
                             Quota(max_slots=1))
    entries = entries_from_allocation(result.waitlisted(), NOW)
    assert [(e.member_id, e.sequence) for e in entries] == [("b", 1), ("c", 2)]
    # with equal F at offer time the draft order decides
    ordered = order_entries(entries, {"b": 0.5, "c": 0.5})
    assert [e.member_id for e in ordered] == ["b", "c"]


def test_any_entry_gets_only_the_part_of_freed_time_inside_its_range():
    week_end = datetime(2026, 12, 1, 19)
    e = entry("e", "m", datetime(2026, 11, 30), week_end, kind=EntryKind.ANY, min_hours=0.5)
    (offer,) = next_offers(FREED, [e], {}, NOW)
    assert (offer.start, offer.end) == (SLOT[0], week_end)
    short = entry("s", "m", datetime(2026, 11, 30), SLOT[0] + 20 * M, kind=EntryKind.ANY, min_hours=0.5)
    assert match_entries(FREED, [short]) == []
