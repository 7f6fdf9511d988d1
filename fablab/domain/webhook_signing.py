"""Signing webhook bodies so a receiver can tell they came from this lab, unchanged and recent.

Two signatures over the exact bytes sent, both HMAC-SHA256 with the hook's secret:

    X-Fablab-Signature-256: sha256=<hex of HMAC(secret, body)>                    (as GitHub does)
    X-Fablab-Signature:     t=<unix seconds>,v1=<hex of HMAC(secret, "<t>." + body)>  (as Stripe does)

The second binds the time of sending, so a receiver that checks it within a tolerance refuses a replayed
request. Pure: no clock (the caller passes the times), no network.
"""

from __future__ import annotations

import hashlib
import hmac

# How far a timestamp may be from the receiver's clock (either way) before the request counts as replayed.
DEFAULT_TOLERANCE = 300


def derive_secret(key: str, hook_id: int, salt: str) -> str:
    """A hook's signing secret from the installation's secret key: nothing secret is stored per hook, and a
    new salt ("rotate") makes a new secret."""
    return hmac.new(key.encode(), f"webhook:{hook_id}:{salt}".encode(), hashlib.sha256).hexdigest()


def _hmac_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_256(secret: str, body: bytes) -> str:
    """The X-Fablab-Signature-256 value: "sha256=" and the hex HMAC of the raw body."""
    return "sha256=" + _hmac_hex(secret, body)


def timestamped_signature(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Fablab-Signature value: "t=<timestamp>,v1=<hex HMAC of '<timestamp>.' + body>"."""
    return f"t={timestamp},v1={_hmac_hex(secret, str(timestamp).encode() + b'.' + body)}"


def signed_headers(secret: str, body: bytes, *, event_type: str, event_id: str, timestamp: int) -> dict[str, str]:
    """Every header of one delivery."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "fablab-webhooks",
        "X-Fablab-Event": event_type,
        "X-Fablab-Delivery": event_id,
        "X-Fablab-Timestamp": str(timestamp),
        "X-Fablab-Signature-256": signature_256(secret, body),
        "X-Fablab-Signature": timestamped_signature(secret, timestamp, body),
    }


def verify_256(secret: str, body: bytes, header: str | None) -> bool:
    """Whether an X-Fablab-Signature-256 header matches the body (constant-time comparison)."""
    if not header:
        return False
    return hmac.compare_digest(header.strip().encode(), signature_256(secret, body).encode())


def parse_timestamped(header: str) -> tuple[int, list[str]] | None:
    """(timestamp, [v1 signatures]) from an X-Fablab-Signature header, or None when it is malformed."""
    timestamp: int | None = None
    v1: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            return None
        if name == "t":
            if not value.isdigit() or len(value) > 12:
                return None
            timestamp = int(value)
        elif name == "v1":
            v1.append(value)
    if timestamp is None or not v1:
        return None
    return timestamp, v1


def verify_timestamped(secret: str, body: bytes, header: str | None, *, now: int,
                       tolerance: int = DEFAULT_TOLERANCE) -> bool:
    """Whether an X-Fablab-Signature header matches the body and its time is within `tolerance` seconds of
    `now` (unix seconds): a stale or future timestamp is a replay, refused even with a valid signature."""
    parsed = parse_timestamped(header or "")
    if parsed is None:
        return False
    timestamp, candidates = parsed
    if abs(now - timestamp) > tolerance:
        return False
    expected = _hmac_hex(secret, str(timestamp).encode() + b"." + body).encode()
    # Every candidate is compared (no early exit on the first mismatch that could leak which one matched).
    results = [hmac.compare_digest(c.encode(), expected) for c in candidates]
    return any(results)

