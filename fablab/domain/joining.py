"""Joining the lab, the pure parts: the lab's sign-up setting, how long each one-time link lives, where it
leads, the list of addresses staff paste to invite, and hiding a link's token where a mail is shown again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

SIGNUP_MODES = ("closed", "invite", "open")

INVITE = "invite"
VERIFY = "verify"
RESET = "reset"
# How long a mailed link works. A newer link of the same purpose for the same address supersedes older ones.
LIFETIMES: dict[str, timedelta] = {
    INVITE: timedelta(days=7),
    VERIFY: timedelta(hours=48),
    RESET: timedelta(hours=1),
}
# The page each link opens; the token rides in the query, so request logs redact it (`token=`).
PATHS: dict[str, str] = {INVITE: "/join/invite", VERIFY: "/join/verify", RESET: "/join/reset"}
TOKEN_MAX = 100  # longer than any token we make: refused before any lookup

MAX_INVITES = 200  # addresses in one invitation form
_ADDRESS = re.compile(r"^[^@\s<>()\[\],;:\"\\]+@[^@\s<>()\[\],;:\"\\]+\.[^@\s<>()\[\],;:\"\\]+$")
_TOKEN_IN_LINK = re.compile(r"(/join/(?:invite|verify|reset)(?:\?|&#63;|%3F)token(?:=|&#61;|%3D))[A-Za-z0-9_\-]+",
                            re.IGNORECASE)
HIDDEN = "[hidden]"


def signup_mode(raw: object) -> str:
    """The FABLAB_SIGNUP setting as one of SIGNUP_MODES; anything else counts as closed (the safe side)."""
    value = str(raw or "").strip().lower()
    return value if value in SIGNUP_MODES else "closed"


def lifetime(purpose: str) -> timedelta:
    try:
        return LIFETIMES[purpose]
    except KeyError:
        raise ValueError(f"unknown link purpose {purpose!r}") from None


def is_address(text: str) -> bool:
    """Plausibly a mail address (one @, a dot in the domain, no spaces or brackets); the mail server decides."""
    return len(text) <= 254 and bool(_ADDRESS.match(text))


@dataclass(frozen=True)
class AddressList:
    addresses: list[str]  # lower-cased, each once, in the order given
    invalid: list[str]  # what was not an address, as typed


def parse_addresses(text: str) -> AddressList:
    """Addresses pasted one per line or separated by commas or semicolons; `Name <a@b.org>` gives a@b.org."""
    seen: set[str] = set()
    good: list[str] = []
    bad: list[str] = []
    for part in re.split(r"[,;\n\r]+", text or ""):
        item = part.strip()
        if not item:
            continue
        found = re.search(r"<([^<>]+)>\s*$", item)
        address = (found.group(1) if found else item).strip().lower()
        if not is_address(address):
            bad.append(item[:120])
        elif address not in seen:
            seen.add(address)
            good.append(address)
    return AddressList(good, bad)


def redact_links(text: str) -> str:
    """A mail's text or HTML with the tokens of its one-time links hidden (for pages that show sent mail)."""
    return _TOKEN_IN_LINK.sub(lambda m: m.group(1) + HIDDEN, text or "")
