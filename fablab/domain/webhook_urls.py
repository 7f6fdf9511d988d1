"""Which webhook URLs may be registered (SSRF care), pure: the caller resolves the host and passes the
addresses.

Only http and https. Refused: addresses that reach the host's own cloud metadata or link-local services
(169.254.0.0/16, fe80::/10, the AWS IPv6 metadata address fd00:ec2::254) and the unspecified address.
Loopback and private LAN addresses are allowed on purpose: labs run Home Assistant, door controllers and
chat bridges on their own network, which is where webhooks usually go.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import SplitResult, urlsplit

MAX_URL = 2000

_FORBIDDEN_NETS = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),
)

# Refusals are data: a code and params; the sentence is made where it is shown.
Refusal = tuple[str, dict[str, str]]


def parse(url: str) -> SplitResult | Refusal:
    """The split URL, or why it cannot be a webhook URL (before any lookup)."""
    url = url.strip()
    if not url or len(url) > MAX_URL:
        return ("url_length", {"max": str(MAX_URL)})
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        return ("url_malformed", {})
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ("url_malformed", {})
    if parts.scheme not in ("http", "https"):
        return ("url_scheme", {"scheme": parts.scheme})
    if not parts.hostname:
        return ("url_no_host", {})
    if not parts.hostname.isascii():
        return ("url_host_ascii", {})
    if parts.username is not None or parts.password is not None:
        return ("url_credentials", {})
    if port == 0:
        return ("url_malformed", {})
    return parts


def forbidden_address(address: str) -> bool:
    """Whether a resolved address is one a webhook must never reach."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone ("fe80::1%eth0")
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_unspecified or any(ip in net for net in _FORBIDDEN_NETS)


def check_addresses(host: str, addresses: list[str]) -> Refusal | None:
    """Why the resolved addresses of `host` are refused (any one forbidden, or none at all), or None."""
    if not addresses:
        return ("url_unresolved", {"host": host})
    bad = [a for a in addresses if forbidden_address(a)]
    if bad:
        return ("url_forbidden_address", {"host": host, "address": bad[0]})
    return None


MESSAGES = {
    "url_length": "The URL must be given and at most {max} characters long.",
    "url_malformed": "This is not a valid URL.",
    "url_scheme": "Only http:// and https:// URLs can receive webhooks.",
    "url_no_host": "The URL needs a host name.",
    "url_host_ascii": "Write the host name in its ASCII form (for an international name, its xn-- form).",
    "url_credentials": "Put no user name or password in the URL; check the signature on the receiver instead.",
    "url_unresolved": "The host {host} cannot be found.",
    "url_forbidden_address": "The host {host} resolves to {address}, a link-local or cloud metadata address "
                             "that webhooks may not reach.",
}


def message(refusal: Refusal) -> str:
    code, params = refusal
    return MESSAGES[code].format(**params)
