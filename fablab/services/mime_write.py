"""Writing a notice mail's MIME bytes directly: multipart/alternative (text, HTML, optional calendar) inside
multipart/mixed when an invitation file is attached. Only this one shape is needed, and the standard
library's generator (header folding, a regular expression compiled per boundary) cost more than sending the
mail over SMTP; the output is parsed back with the standard parser in the tests.

Text goes out quoted-printable (7-bit safe, readable), the calendar base64 (keeps its CRLFs), lines end CRLF.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Sequence
from email.header import Header

CRLF = b"\r\n"


def header_value(text: str) -> str:
    """A header value on the wire: ASCII as it is (callers strip line breaks), anything else as RFC 2047
    encoded words, folded."""
    if text.isascii():
        return text
    return Header(text, "utf-8").encode(linesep="\r\n")


def _qp(text: str) -> bytes:
    body = binascii.b2a_qp(text.replace("\r\n", "\n").encode("utf-8"), istext=True)
    return body.replace(b"\n", CRLF)


def _b64(data: bytes) -> bytes:
    raw = base64.b64encode(data)
    return CRLF.join(raw[i:i + 76] for i in range(0, len(raw), 76))


def _text(subtype: str, text: str) -> bytes:
    charset = "us-ascii" if text.isascii() else "utf-8"
    return (f"Content-Type: text/{subtype}; charset=\"{charset}\"\r\n"
            f"Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode() + _qp(text)


def _calendar(ics: bytes, method: str, filename: str | None) -> bytes:
    head = f"Content-Type: text/calendar; method=\"{method}\"; charset=\"utf-8\"\r\n"
    if filename:
        head += f"Content-Disposition: attachment; filename=\"{filename}\"\r\n"
    return (head + "Content-Transfer-Encoding: base64\r\n\r\n").encode() + _b64(ics)


def _multipart(subtype: str, parts: Sequence[bytes]) -> tuple[bytes, bytes]:
    """(its Content-Type header line, its body) for a multipart of already written parts."""
    boundary = f"=_fablab_{secrets.token_hex(16)}".encode()
    out = b"".join(b"--" + boundary + CRLF + p + CRLF for p in parts) + b"--" + boundary + b"--" + CRLF
    return b"Content-Type: multipart/" + subtype.encode() + b"; boundary=\"" + boundary + b"\"", out


def notice_mail(headers: Sequence[tuple[str, str]], text: str, html: str,
                invitation: tuple[str, bytes] | None = None) -> bytes:
    """The whole message: `headers` (name, wire value) first, then MIME-Version and the body."""
    parts = [_text("plain", text), _text("html", html)]
    if invitation is not None:
        method, ics = invitation
        parts.append(_calendar(ics, method, None))  # in the alternative: how calendar clients find it
        alt_type, alt_body = _multipart("alternative", parts)
        top_type, body = _multipart("mixed", [alt_type + CRLF + CRLF + alt_body,
                                              _calendar(ics, method, "invite.ics")])  # how people find it
    else:
        top_type, body = _multipart("alternative", parts)
    head = b"".join(f"{name}: {value}".encode("ascii") + CRLF for name, value in headers)
    return head + b"MIME-Version: 1.0" + CRLF + top_type + CRLF + CRLF + body
