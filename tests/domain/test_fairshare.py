from datetime import datetime, timedelta

import pytest

from fablab.domain.fairshare import (
    FairShareState,
    UsageRecord,
    contribution_bonus,
    decay_weight,
    decayed_usage,
    equal_shares,
    explain_factor,
    fair_share_factors,
    fair_share_state,
    normalise_shares,
    shares_from_groups,
)

NOW = datetime(2026, 11, 29, 12, 0)
DAY = timedelta(days=1)


def test_decay_halves_every_half_life():
    assert decay_weight(timedelta(0), 14 * DAY) == 1.0
    assert decay_weight(14 * DAY, 14 * DAY) == pytest.approx(0.5)
    assert decay_weight(28 * DAY, 14 * DAY) == pytest.approx(0.25)
    assert decay_weight(-DAY, 14 * DAY) == 1.0  # granted-but-future usage counts fully


def test_decayed_usage_excludes_maintenance_and_counts_no_show_at_reserved_length():
    usages = [
        UsageRecord("a", NOW - 14 * DAY, 4.0),  # 2.0 after decay
        UsageRecord.from_interval("a", NOW - 3 * DAY, NOW - 3 * DAY + timedelta(hours=2)),  # no-show, reserved 2 h
        UsageRecord("a", NOW, 10.0, counts=False),  # maintenance
        UsageRecord("b", NOW - 7 * DAY, 2.0),
    ]
    got = decayed_usage(usages, NOW, 14 * DAY)
    age_days = 3 - 2 / 24  # usage is dated at its end
    assert got["a"] == pytest.approx(2.0 + 2 * 0.5 ** (age_days / 14))
    assert got["b"] == pytest.approx(2 * 0.5**0.5)


def test_factors_hand_computed_equal_shares():
    # a: 10 h two weeks ago -> 5 ; b: 5 h now -> 5 ; total 10 ; U = 0.5 each ; S = 1/4 ; F = 2^-2
    usages = [UsageRecord("a", NOW - 14 * DAY, 10), UsageRecord("b", NOW, 5)]
    f = fair_share_factors(usages, equal_shares("abcd"), NOW)
    assert f == pytest.approx({"a": 0.25, "b": 0.25, "c": 1.0, "d": 1.0})


def test_exactly_at_share_is_one_half():
    usages = [UsageRecord(m, NOW, 3) for m in "abc"]
    f = fair_share_factors(usages, equal_shares("abc"), NOW)
    assert all(v == pytest.approx(0.5) for v in f.values())


def test_group_shares_change_priority():
    # students weigh 2, others 1: S(s)=2/3, S(o)=1/3; both used half: F(s)=2^-(0.5/(2/3)), F(o)=2^-(1.5)
    raw = shares_from_groups({"s": "student", "o": "other"}, {"student": 2})
    usages = [UsageRecord("s", NOW, 1), UsageRecord("o", NOW, 1)]
    f = fair_share_factors(usages, raw, NOW)
    assert f["s"] == pytest.approx(2 ** -0.75)
    assert f["o"] == pytest.approx(2 ** -1.5)
    assert f["s"] > f["o"]


def test_contribution_bonus_capped_at_a_quarter():
    assert contribution_bonus(0) == 0
    assert contribution_bonus(10, full_bonus_hours=20) == pytest.approx(0.125)
    assert contribution_bonus(100, full_bonus_hours=20, cap=0.9) == pytest.approx(0.25)
    s = normalise_shares({"a": 1, "b": 1}, bonus={"a": 5.0})  # absurd bonus still capped
    assert s["a"] == pytest.approx(1.25 / 2.25)


def test_state_recomputes_after_added_usage_and_adds_missing_members():
    st = fair_share_state([UsageRecord("a", NOW, 2)], equal_shares("ab"), NOW)
    assert st.factor("b") == 1.0
    st.add_usage("b", 2)
    assert st.factor("a") == pytest.approx(0.5) and st.factor("b") == pytest.approx(0.5)
    wider = st.with_members(["c"])
    assert wider.shares == pytest.approx({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})
    assert "c" not in st.shares


def test_nobody_used_anything_everyone_first():
    st = FairShareState({}, normalise_shares(equal_shares("ab")))
    assert st.factors() == {"a": 1.0, "b": 1.0}


def test_explanation_in_plain_words():
    text = explain_factor(0.71, usage_fraction=0.1, share=0.2)
    assert text.startswith("Your priority is 0.71: you have used less than your share")
    assert "F=0.5 means exactly at share" in text and "14 days" in text
    assert "more than your share" in explain_factor(0.3)
    assert "exactly your share" in explain_factor(0.5)
    assert "not used this machine recently" in explain_factor(1.0)


def test_usage_fraction_feeds_the_explanation():
    st = fair_share_state([UsageRecord("a", NOW, 1), UsageRecord("b", NOW, 3)], equal_shares("ab"), NOW)
    assert st.usage_fraction("a") == 0.25 and st.usage_fraction("c") == 0
    text = explain_factor(st.factor("a"), st.usage_fraction("a"), st.shares["a"])
    assert "You used 25% of the recent machine time; your share is 50%." in text
