"""The pure two-factor rules: the time-step window, the replay rule, reading what was typed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from fablab.domain import totp_rules as rules


def test_time_step_matches_rfc_6238_and_pyotp() -> None:
    # RFC 6238's test vector: T = 59 s is step 1; 1111111109 s is step 37037036.
    assert rules.time_step(59) == 1
    assert rules.time_step(1111111109) == 37037036
    at = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert rules.time_step(at.timestamp()) == pyotp.TOTP(pyotp.random_base32()).timecode(at)


def test_window_is_one_step_either_side_newest_first() -> None:
    assert rules.fresh_steps(100, None) == [101, 100, 99]


@pytest.mark.parametrize("last,expected", [(98, [101, 100, 99]), (99, [101, 100]), (100, [101]), (101, []),
                                           (500, [])])
def test_only_steps_after_the_last_accepted_one_count(last: int, expected: list[int]) -> None:
    assert rules.fresh_steps(100, last) == expected


@pytest.mark.parametrize("typed,kind,value", [
    ("123456", "totp", "123456"),
    (" 123 456 ", "totp", "123456"),
    ("abcd-efgh-jkmn", "recovery", "abcdefghjkmn"),
    ("ABCD EFGH JKMN", "recovery", "abcdefghjkmn"),
])
def test_read_code(typed: str, kind: str, value: str) -> None:
    code = rules.read_code(typed)
    assert code is not None and (code.kind, code.value) == (kind, value)


@pytest.mark.parametrize("typed", ["", None, "12345", "1234567", "12345a", "abcd-efgh-jkm", "abcd-efgh-jkm0",
                                   "abcd-efgh-jkml", "x" * 500, "١٢٣٤٥٦"])
def test_read_code_refuses_what_can_be_neither(typed: str | None) -> None:
    assert rules.read_code(typed) is None


def test_recovery_codes_round_trip() -> None:
    assert rules.format_recovery("abcdefghjkmn") == "abcd-efgh-jkmn"
    assert rules.normalise_recovery(rules.format_recovery("abcdefghjkmn")) == "abcdefghjkmn"
    assert not set("01ilo") & set(rules.RECOVERY_ALPHABET)  # no look-alikes


def test_a_challenge_closes_when_it_expires_or_after_too_many_wrong_codes() -> None:
    now = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # the night of the spring DST switch in Berlin
    expires = now + rules.CHALLENGE_LIFETIME
    assert rules.challenge_open(expires, 0, now)
    assert rules.challenge_open(expires, rules.CHALLENGE_MAX_FAILURES - 1, expires - timedelta(seconds=1))
    assert not rules.challenge_open(expires, 0, expires)
    assert not rules.challenge_open(expires, rules.CHALLENGE_MAX_FAILURES, now)


@pytest.mark.parametrize("staff,default,switch,required", [
    (False, True, True, False), (True, False, False, False), (True, True, False, True), (True, False, True, True),
])
def test_required_for_staff_when_the_deployment_or_the_switch_says_so(staff, default, switch, required) -> None:
    assert rules.required_for(staff, default, switch) is required
