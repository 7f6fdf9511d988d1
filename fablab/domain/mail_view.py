"""A received mail taken apart for an admin to look at: its headers, text, HTML (sanitised) and attachments.

The mails come from our own templates, but names, titles and subjects in them are text members chose, so
nothing here is trusted: headers and text are shown escaped by the page, the HTML body goes through nh3
(an allow-list) before the page puts it in a sandboxed iframe, and every size is capped.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime

import nh3

MAX_TEXT_CHARS = 200_000
MAX_HEADER_CHARS = 2_000
# Parts shown as text on the page (an invitation is read as its iCalendar source).
TEXT_ATTACHMENT_TYPES = ("text/calendar", "text/plain", "application/ics")

_TAGS = {
    "a", "b", "blockquote", "br", "code", "div", "em", "h1", "h2", "h3", "h4", "hr", "i", "li", "ol", "p",
    "pre", "small", "span", "strong", "table", "tbody", "td", "th", "thead", "tr", "u", "ul",
}
_ATTRIBUTES = {"a": {"href", "title"}, "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan"}}


@dataclass(frozen=True)
class MailSummary:
    to: str
    subject: str
    sent: datetime | None  # the Date header, when it parses


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int
    text: str | None  # the content, for calendar and text parts


@dataclass(frozen=True)
class MailView:
    headers: list[tuple[str, str]]
    subject: str
    text: str
    html: str  # sanitised; empty when the mail has no HTML part
    attachments: list[Attachment] = field(default_factory=list)


def _header(value: object) -> str:
    return str(value)[:MAX_HEADER_CHARS]


def _get(msg: Message, name: str) -> str:
    try:
        value = msg.get(name)
    except (ValueError, IndexError, TypeError):  # a malformed header the parser cannot decode
        return ""
    return _header(value) if value is not None else ""


def _date(msg: Message) -> datetime | None:
    raw = _get(msg, "Date")
    try:
        return parsedate_to_datetime(raw) if raw else None
    except (ValueError, TypeError, IndexError):
        return None


def summary(header_bytes: bytes) -> MailSummary:
    """To, subject and date from a mail's header block (or the whole mail: the body is not read)."""
    msg = BytesHeaderParser(policy=email.policy.default).parsebytes(header_bytes)
    return MailSummary(to=_get(msg, "To"), subject=_get(msg, "Subject"), sent=_date(msg))


def sanitise_html(html: str) -> str:
    """HTML a mail body may keep: formatting and links (http, https, mailto); no script, style, form,
    image (no remote fetches when an admin opens a mail), event handler or style attribute."""
    return nh3.clean(html[:MAX_TEXT_CHARS], tags=_TAGS, attributes=_ATTRIBUTES,
                     url_schemes={"http", "https", "mailto"}, link_rel="noopener noreferrer nofollow")


def _content(part: Message) -> str:
    try:
        value = part.get_content() if isinstance(part, EmailMessage) else part.get_payload(decode=True)
    except (LookupError, ValueError, AssertionError):  # an unknown charset, a broken encoding
        value = part.get_payload(decode=True)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value or "")[:MAX_TEXT_CHARS]


def _size(part: Message) -> int:
    payload = part.get_payload(decode=True)
    return len(payload) if isinstance(payload, bytes) else 0


def parse(raw: bytes) -> MailView:
    """Every part of one mail: the first text/plain and text/html outside attachments are its bodies, every
    other leaf part is listed as an attachment (calendar and text ones with their content)."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    headers = []
    for name, value in msg.raw_items():
        try:
            headers.append((name, _header(msg.policy.header_fetch_parse(name, value))))
        except (ValueError, IndexError, TypeError):  # undecodable: shown as it came
            headers.append((name, _header(value)))
    text = html = None
    attachments: list[Attachment] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        inline = part.get_content_disposition() != "attachment"
        if inline and ctype == "text/plain" and text is None:
            text = _content(part)
        elif inline and ctype == "text/html" and html is None:
            html = _content(part)
        else:
            shown = _content(part) if ctype in TEXT_ATTACHMENT_TYPES else None
            attachments.append(Attachment(filename=_header(part.get_filename() or ""), content_type=ctype,
                                          size=_size(part), text=shown))
    return MailView(headers=headers, subject=_get(msg, "Subject"), text=text or "",
                    html=sanitise_html(html) if html else "", attachments=attachments)
