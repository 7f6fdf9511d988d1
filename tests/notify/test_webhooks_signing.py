"""The pure parts of webhooks: signatures (GitHub- and Stripe-style), the body, which URLs are refused."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from fablab.domain import webhook_urls
from fablab.domain.webhook_body import EVENT_TYPES, build_body, clean_event_types, strip_people
from fablab.domain.webhook_signing import (
    derive_secret,
    parse_timestamped,
    signature_256,
    signed_headers,
    timestamped_signature,
    verify_256,
    verify_timestamped,
)

SECRET = "s3cret"
BODY = b'{"created_at":"2026-03-29T01:30:00Z","data":{},"id":"x","type":"ping"}'
T = 1_774_747_800


def test_signature_256_is_the_hmac_of_the_raw_body():
    expected = "sha256=" + hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    assert signature_256(SECRET, BODY) == expected
    assert verify_256(SECRET, BODY, expected)
    assert not verify_256(SECRET, BODY + b" ", expected)
    assert not verify_256("other", BODY, expected)
    assert not verify_256(SECRET, BODY, None) and not verify_256(SECRET, BODY, "")
    assert not verify_256(SECRET, BODY, expected.upper())


def test_timestamped_signature_binds_the_time_and_refuses_replays():
    header = timestamped_signature(SECRET, T, BODY)
    mac = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert header == f"t={T},v1={mac}"
    assert verify_timestamped(SECRET, BODY, header, now=T)
    assert verify_timestamped(SECRET, BODY, header, now=T + 300)
    assert not verify_timestamped(SECRET, BODY, header, now=T + 301)  # replayed later
    assert not verify_timestamped(SECRET, BODY, header, now=T - 301)  # from the future
    assert verify_timestamped(SECRET, BODY, header, now=T + 1000, tolerance=1000)
    # The time is signed: moving it breaks the signature.
    assert not verify_timestamped(SECRET, BODY, header.replace(f"t={T}", f"t={T + 10}"), now=T + 10)
    assert not verify_timestamped(SECRET, BODY + b"x", header, now=T)
    # Several v1 values (a receiver keeping two secrets while rotating): one match is enough.
    assert verify_timestamped(SECRET, BODY, f"t={T},v1=00,v1={mac}", now=T)


@pytest.mark.parametrize("header", ["", "garbage", "t=abc,v1=00", "v1=00", f"t={T}", "t=,v1=", "t=-5,v1=00",
                                    "t=1" + "0" * 20 + ",v1=00", None])
def test_malformed_signature_headers_are_refused(header):
    assert not verify_timestamped(SECRET, BODY, header, now=T)


def test_parse_timestamped():
    assert parse_timestamped(f"t={T}, v1=ab ,v0=zz") == (T, ["ab"])
    assert parse_timestamped("t=1,v1") is None


def test_headers_of_a_delivery():
    h = signed_headers(SECRET, BODY, event_type="ping", event_id="e1", timestamp=T)
    assert h["Content-Type"] == "application/json" and h["User-Agent"] == "fablab-webhooks"
    assert h["X-Fablab-Event"] == "ping" and h["X-Fablab-Delivery"] == "e1" and h["X-Fablab-Timestamp"] == str(T)
    assert verify_256(SECRET, BODY, h["X-Fablab-Signature-256"])
    assert verify_timestamped(SECRET, BODY, h["X-Fablab-Signature"], now=T)


def test_derived_secrets_differ_per_hook_salt_and_key():
    a = derive_secret("key", 1, "salt")
    assert a == derive_secret("key", 1, "salt") and len(a) == 64
    assert len({a, derive_secret("key", 2, "salt"), derive_secret("key", 1, "salt2"),
                derive_secret("key2", 1, "salt")}) == 4


def test_body_is_stable_compact_and_sorted():
    at = datetime(2026, 3, 29, 3, 30, tzinfo=timezone(timedelta(hours=2)))
    body = build_body("id-1", "booking.created", at, {"machine_id": 3, "booking_id": 9})
    assert body == ('{"created_at":"2026-03-29T01:30:00Z","data":{"booking_id":9,"machine_id":3},'
                    '"id":"id-1","type":"booking.created"}')
    assert body == build_body("id-1", "booking.created", at.astimezone(UTC), {"booking_id": 9, "machine_id": 3})
    with pytest.raises(ValueError):
        build_body("i", "t", datetime(2026, 1, 1), {})
    with pytest.raises(ValueError):
        build_body("i", "t", at, {"x": float("nan")})


def test_members_appear_by_id_only_unless_the_lab_shows_names():
    data = {"member_id": 4, "member": "Ada Lovelace", "member_name": "Ada", "machine": "Laser", "title": "Bracket",
            "email": "ada@example.org", "actor": {"id": 5, "name": "Bob", "email": "b@x.org"},
            "people": [{"author_name": "Cy", "author_id": 6, "contact_email": "c@x.org"}]}
    hidden = strip_people(data, show_names=False)
    assert hidden == {"member_id": 4, "machine": "Laser", "title": "Bracket", "people": [{"author_id": 6}]}
    shown = strip_people(data, show_names=True)
    assert shown["member"] == "Ada Lovelace" and shown["actor"] == {"id": 5, "name": "Bob"}
    assert "email" not in json.dumps(shown)


def test_event_types_are_the_issue_list():
    assert set(EVENT_TYPES) == {"booking.created", "booking.cancelled", "booking.checked_in", "booking.no_show",
                                "usage.started", "usage.ended", "machine.status", "offer.made", "task.due",
                                "design.published"}
    assert clean_event_types(["task.due", "nope", "booking.created", "task.due"]) == ["booking.created", "task.due"]


@pytest.mark.parametrize("url,code", [
    ("ftp://example.org/x", "url_scheme"), ("file:///etc/passwd", "url_scheme"), ("javascript:alert(1)", "url_scheme"),
    ("http://", "url_no_host"), ("http://user:pw@example.org/", "url_credentials"), ("", "url_length"),
    ("http://example.org/" + "a" * 2000, "url_length"), ("http://exa mple.org/", "url_malformed"),
    ("http://example.org:99999/", "url_malformed"), ("http://bücher.example/", "url_host_ascii"),
    ("http://[::1/", "url_malformed"),
])
def test_malformed_or_foreign_urls_are_refused(url, code):
    result = webhook_urls.parse(url)
    assert isinstance(result, tuple) and result[0] == code
    assert webhook_urls.message(result)


@pytest.mark.parametrize("address,forbidden", [
    ("169.254.169.254", True), ("169.254.0.1", True), ("fd00:ec2::254", True), ("fe80::1%eth0", True),
    ("::ffff:169.254.169.254", True), ("0.0.0.0", True), ("::", True), ("not-an-ip", True),
    ("127.0.0.1", False), ("::1", False), ("192.168.1.20", False), ("10.0.0.5", False), ("fd00:ec2::253", False),
    ("93.184.216.34", False),
])
def test_link_local_and_metadata_addresses_are_forbidden_lan_and_loopback_are_not(address, forbidden):
    assert webhook_urls.forbidden_address(address) is forbidden


def test_one_forbidden_address_among_several_refuses_the_host():
    assert webhook_urls.check_addresses("h", ["192.168.1.2", "169.254.169.254"])[0] == "url_forbidden_address"
    assert webhook_urls.check_addresses("h", [])[0] == "url_unresolved"
    assert webhook_urls.check_addresses("h", ["192.168.1.2"]) is None


def test_openapi_webhooks_describe_every_type_and_its_headers():
    from fablab.domain.webhook_body import openapi_webhooks

    doc = openapi_webhooks()
    assert set(doc) == {*EVENT_TYPES, "ping"}
    op = doc["booking.created"]["post"]
    assert {p["name"] for p in op["parameters"]} >= {"X-Fablab-Signature-256", "X-Fablab-Signature"}
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    body = json.loads(build_body("00000000-0000-4000-8000-000000000000", "booking.created",
                                 datetime(2026, 1, 1, tzinfo=UTC), {"booking_id": 1}))
    assert set(body) == set(schema["required"]) == set(schema["properties"])
    assert schema["properties"]["type"]["const"] == body["type"]
