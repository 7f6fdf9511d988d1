"""The pure parts of joining: the setting, link lifetimes, the pasted address list, hiding tokens in shown
mail, and the booking rule that keeps an unconfirmed or unapproved account from booking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from fablab.domain import account_standing, joining
from fablab.domain import booking_rules as rules
from fablab.domain.policy import defaults_for

TZ = ZoneInfo("Europe/Berlin")
NOW = datetime(2030, 3, 11, 9, 0, tzinfo=UTC)


def test_signup_mode_falls_back_to_closed() -> None:
    assert [joining.signup_mode(v) for v in ("open", " Invite ", "closed", "", None, "yes")] == [
        "open", "invite", "closed", "closed", "closed", "closed"]


def test_link_lifetimes() -> None:
    assert joining.lifetime("invite") == timedelta(days=7)
    assert joining.lifetime("verify") == timedelta(hours=48)
    assert joining.lifetime("reset") == timedelta(hours=1)
    with pytest.raises(ValueError):
        joining.lifetime("login")


def test_parse_addresses_lines_commas_names_and_bad_entries() -> None:
    parsed = joining.parse_addresses("a@x.org, B@X.org\n\nAda Lovelace <ada@x.org>;a@x.org\nnot-an-address\nx@y")
    assert parsed.addresses == ["a@x.org", "b@x.org", "ada@x.org"]
    assert parsed.invalid == ["not-an-address", "x@y"]
    assert joining.parse_addresses("").addresses == []


def test_redact_links_hides_tokens_in_text_and_html() -> None:
    text = "Go to https://lab.org/join/invite?token=abc_DEF-123 now, or https://lab.org/machines?token=keep"
    assert joining.redact_links(text) == ("Go to https://lab.org/join/invite?token=[hidden] now, or "
                                          "https://lab.org/machines?token=keep")
    assert "secret" not in joining.redact_links('<a href="https://l/join/reset?token=secret">x</a>')


def test_account_state() -> None:
    assert account_standing.account_state(email_verified=False, approved=True) == "unverified"
    assert account_standing.account_state(email_verified=False, approved=False) == "unverified"
    assert account_standing.account_state(email_verified=True, approved=False) == "unapproved"
    assert account_standing.account_state(email_verified=True, approved=True) == "ok"


@pytest.mark.parametrize("account,code", [("unverified", "account_not_verified"),
                                          ("unapproved", "account_not_approved")])
def test_an_account_that_may_not_book_gets_that_reason_alone(account: str, code: str) -> None:
    policy = defaults_for("other")
    start = datetime(2030, 3, 11, 10, 0, tzinfo=UTC)
    member = rules.MemberContext(1, "member", rules.Qualification("none"), account=account)
    request = rules.BookingRequest(1, 1, start, start + timedelta(hours=1))
    violations = rules.check_booking(policy, request, [], member, NOW, TZ, machine_out_of_order=True)
    assert [v.code for v in violations] == [code] and violations[0].http_status == 422
    assert [v.code for v in rules.member_violations(policy, [], member, start, start + timedelta(hours=1),
                                                    NOW, TZ)] == [code]
    booking = rules.ExistingBooking(5, 1, 1, NOW, NOW + timedelta(hours=1), "checked_in", NOW)
    assert [v.code for v in rules.check_extension(policy, booking, NOW + timedelta(hours=2), [booking], member,
                                                  NOW, TZ)] == [code]
    ok = rules.MemberContext(1, "member", rules.Qualification("valid"))
    assert code not in [v.code for v in rules.check_booking(policy, request, [], ok, NOW, TZ)]


def test_the_waiting_message_is_the_one_every_path_shows() -> None:
    member = rules.MemberContext(1, account="unapproved")
    start = datetime(2030, 3, 11, 10, 0, tzinfo=UTC)
    v = rules.check_booking(defaults_for("other"), rules.BookingRequest(1, 1, start, start + timedelta(hours=1)),
                            [], member, NOW, TZ)[0]
    assert v.message.startswith("Your account is waiting for the lab's approval")
