"""Where a page may send the browser next: same-site paths only.

`next=` and the Referer are set by whoever made the link, so they are untrusted. An open redirect after a
sign-in is a phishing tool, and a CR/LF in a Location header makes werkzeug raise (a 500). Browsers also
strip tabs and newlines from URLs and read a backslash as a slash, so `/\\evil` and `/\\t/evil` would leave the
site; anything that is not a plain relative path is replaced by the fallback.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import request

MAX_LENGTH = 2000


def safe_path(target: str | None) -> str | None:
    """`target` if it is a path on this site (with its query), else None."""
    if not target or len(target) > MAX_LENGTH:
        return None
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def safe_next(target: str | None, fallback: str) -> str:
    """The `next=` of a sign-in, or the fallback."""
    return safe_path(target) or fallback


def back(fallback: str) -> str:
    """The page the POST came from (its Referer) when that page is on this site, else the fallback."""
    ref = request.referrer
    if not ref:
        return fallback
    try:
        parts = urlsplit(ref)
    except ValueError:
        return fallback
    own = urlsplit(request.host_url)
    if (parts.scheme, parts.netloc) != (own.scheme, own.netloc):
        return fallback
    path = parts.path or "/"
    return safe_path(path + (f"?{parts.query}" if parts.query else "")) or fallback
