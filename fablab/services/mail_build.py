"""One outbox row → one MIME message, ready for the wire: plain text and HTML (templates/mail/layout.html around the
notice's own body), the Message-ID fixed at queue time, one-click unsubscribe (RFC 8058) for kinds a member
may turn off, and the calendar invitation when the mail asks for one.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from email import charset as email_charset
from email.encoders import encode_base64
from email.header import Header
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import format_datetime, formataddr, parseaddr

from flask import current_app
from markupsafe import Markup

from ..domain.notice_kinds import kind as kind_of
from ..extensions import db
from ..models import Member
from ..models.notifications import OutboxMail
from . import invitations
from .notice_render import render
from .notify import absolute_url, unsubscribe_token

PREFERENCES_PATH = "/notices/preferences"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Built with the classic MIME classes: a tenth of the cost of EmailMessage's parsed headers, which matters
# for a batch of thousands. Text goes out quoted-printable (readable, 7-bit), lines end CRLF on the wire.
_UTF8_QP = email_charset.Charset("utf-8")
_UTF8_QP.body_encoding = email_charset.QP
_WIRE = compat32.clone(linesep="\r\n")


class BuildError(ValueError):
    """This mail cannot be made (a bad address, a template that fails): it fails alone, the batch goes on."""


@dataclass(frozen=True)
class BuiltMail:
    message: Message
    data: bytes  # what goes over the wire (CRLF line ends)
    sender: str  # envelope sender (MAIL FROM)
    recipient: str  # envelope recipient (RCPT TO)


def sender_address() -> tuple[str, str]:
    """(display name, address) from FABLAB_MAIL_FROM; the lab's name when it has none."""
    name, address = parseaddr(current_app.config["FABLAB_MAIL_FROM"])
    return name or current_app.config["FABLAB_LAB_NAME"], address or "fablab@localhost"


def check_address(address: str) -> str:
    """The address in the form it goes to the server (an international domain as IDNA), if mail can go to
    it; BuildError otherwise."""
    if not address or _CONTROL.search(address) or " " in address or address.count("@") != 1:
        raise BuildError(f"not a mail address: {address!r}")
    local, domain = address.split("@")
    if not local or not local.isascii() or any(c in local for c in '<>()[],;:"\\'):
        raise BuildError(f"not a mail address: {address!r}")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise BuildError(f"not a mail address: {address!r} (the domain)") from None
    if not domain or ("." not in domain.strip(".") and domain != "localhost") or \
            not re.fullmatch(r"[A-Za-z0-9.-]+", domain):
        raise BuildError(f"not a mail address: {address!r}")
    return f"{local}@{domain}"


def _why(kind_name: str, lab: str) -> str:
    k = kind_of(kind_name)
    if k.safety:
        return f"You get this mail because it concerns your bookings or account at {lab}; it is always sent."
    if k.audience.value != "member":
        return f"You get this mail as staff of {lab} ({k.group})."
    return f"You get this mail because you chose email for “{k.group}” notices at {lab}."


class _Unfolded:
    """A header value written in one piece (the generator folds only at spaces, and would put a long
    List-Unsubscribe URL alone on a continuation line); fine up to RFC 5322's 998 characters."""

    def __init__(self, value: str) -> None:
        self.value = value

    def encode(self, linesep: str = "\n", maxlinelen: int | None = None, **_: object) -> str:
        return self.value

    def __str__(self) -> str:
        return self.value


def _clean(text: str) -> str:
    """A display name for a header: no line breaks or control characters (header injection)."""
    return " ".join(_CONTROL.sub(" ", text).split())


def _header_text(text: str) -> str | Header:
    return text if text.isascii() else Header(text, "utf-8")


def _text_part(text: str, subtype: str) -> MIMENonMultipart:
    if text.isascii():
        return MIMEText(text, subtype, "us-ascii")
    part = MIMENonMultipart("text", subtype)
    part.set_payload(text, _UTF8_QP)  # sets charset and Content-Transfer-Encoding
    return part


def _calendar_part(ics: bytes, method: str, filename: str | None = None) -> MIMEBase:
    part = MIMEBase("text", "calendar", method=method, charset="utf-8")
    part.set_payload(ics)
    encode_base64(part)  # keeps the CRLF line ends RFC 5545 wants
    if filename:
        part.add_header("Content-Disposition", "attachment", filename=filename)
    return part


def _short(value: str) -> str | _Unfolded:
    """An ASCII header value that fits one line goes out as it is: the generator's folding (through
    email.header.Header) costs more than the rest of a header, and has nothing to do for these."""
    return _Unfolded(value) if value.isascii() and len(value) < 900 else value


def _set_boundaries(msg: Message) -> None:
    """Random multipart boundaries, set here: otherwise the generator compiles a new regular expression per
    message to check its own boundary against the text (a 128-bit random one cannot occur in it). Then the
    parts' Content-Transfer-Encoding skips the folding machinery too (Content-Type stays a string: the
    generator parses it)."""
    for part in msg.walk():
        if part.is_multipart():
            part.set_boundary(f"=_fablab_{secrets.token_hex(16)}")
        cte = part.get("Content-Transfer-Encoding")
        if part is not msg and isinstance(cte, str):
            part.replace_header("Content-Transfer-Encoding", _short(cte))  # type: ignore[arg-type]  # written as it is (see _Unfolded)


def build(mail: OutboxMail, now: datetime) -> BuiltMail:
    """The message for one outbox row, or BuildError (bad address, unknown kind, failing template)."""
    recipient = check_address(mail.to_address.strip())
    try:
        k = kind_of(mail.kind)
    except ValueError as exc:
        raise BuildError(str(exc)) from None
    notice = mail.notice
    member = notice.member if notice is not None else (
        db.session.get(Member, mail.member_id) if mail.member_id is not None else None)
    lab = current_app.config["FABLAB_LAB_NAME"]
    try:
        if notice is not None:
            rendered = render(notice.kind, notice.params or {}, member, notice.link)
        else:
            rendered = render(mail.kind, mail.params or {}, member, None)
        why = _why(k.name, lab)
        prefs = absolute_url(PREFERENCES_PATH)
        # The app's context processors want a request; the layout needs only these.
        html = current_app.jinja_env.get_template("mail/layout.html").render(
            subject=rendered.subject, body=Markup(rendered.html), lab_name=lab, why=why, preferences_url=prefs)
    except Exception as exc:  # noqa: BLE001 (a template's failure is this mail's, never the batch's)
        raise BuildError(f"cannot render {mail.kind}: {type(exc).__name__}: {exc}") from None
    text = f"{rendered.text}\n\n-- \n{why}\nChoose what you receive: {prefs}\n"

    name, address = sender_address()
    body = MIMEMultipart("alternative")
    body.attach(_text_part(text, "plain"))
    body.attach(_text_part(html, "html"))
    msg: Message = body
    spec = (mail.params or {}).get("ics")
    if spec:
        if not isinstance(spec, dict):
            raise BuildError("params.ics must be an object")
        try:
            method, ics = invitations.invitation_for(spec, member, recipient)
        except invitations.InvitationError as exc:
            raise BuildError(str(exc)) from None
        # In the alternative (how calendar clients find it) and as a file (how people find it).
        body.attach(_calendar_part(ics, method))
        msg = MIMEMultipart("mixed")
        msg.attach(body)
        msg.attach(_calendar_part(ics, method, "invite.ics"))
    msg["From"] = _short(formataddr((_clean(name), address), charset="utf-8"))  # type: ignore[assignment]
    to_name = _clean(member.name) if member is not None and member.name else ""
    to = formataddr((to_name, recipient), charset="utf-8") if to_name else recipient
    msg["To"] = _short(to)  # type: ignore[assignment]
    msg["Subject"] = _short(_clean(rendered.subject)) if rendered.subject.isascii() else (  # type: ignore[assignment]
        _header_text(_clean(rendered.subject)))
    msg["Date"] = _short(format_datetime(now))  # type: ignore[assignment]
    msg["Message-ID"] = _short(_clean(mail.message_id))  # type: ignore[assignment]
    msg["Auto-Submitted"] = _Unfolded("auto-generated")  # type: ignore[assignment]
    _set_boundaries(msg)
    if not k.safety and mail.member_id is not None:
        url = absolute_url("/notices/unsubscribe/" + unsubscribe_token(mail.member_id, k.name))
        msg["List-Unsubscribe"] = _Unfolded(f"<{url}>")  # type: ignore[assignment]
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    for part in msg.walk():
        if part is not msg:
            del part["MIME-Version"]  # the MIME classes put one on every part; it belongs at the top only
    data = msg.as_bytes(policy=_WIRE)
    return BuiltMail(message=msg, data=data, sender=address, recipient=recipient)
