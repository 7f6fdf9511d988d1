"""One outbox row → one mail, ready for the wire (its bytes written by fablab/services/mime_write.py): plain
text and HTML (templates/mail/layout.html around the notice's own body), the Message-ID fixed at queue time,
one-click unsubscribe (RFC 8058) for kinds a member may turn off, and the calendar invitation when the mail
asks for one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, formataddr, parseaddr

from flask import current_app
from markupsafe import Markup

from ..domain.notice_kinds import kind as kind_of
from ..extensions import db
from ..models import Member
from ..models.notifications import OutboxMail
from . import invitations
from .mime_write import header_value, notice_mail
from .notice_render import render
from .notify import absolute_url, unsubscribe_token

PREFERENCES_PATH = "/notices/preferences"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class BuildError(ValueError):
    """This mail cannot be made (a bad address, a template that fails): it fails alone, the batch goes on."""


@dataclass(frozen=True)
class BuiltMail:
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




def _clean(text: str) -> str:
    """A display name for a header: no line breaks or control characters (header injection)."""
    return " ".join(_CONTROL.sub(" ", text).split())












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
    invitation = None
    spec = (mail.params or {}).get("ics")
    if spec:
        if not isinstance(spec, dict):
            raise BuildError("params.ics must be an object")
        try:
            invitation = invitations.invitation_for(spec, member, recipient)
        except invitations.InvitationError as exc:
            raise BuildError(str(exc)) from None
    to_name = _clean(member.name) if member is not None and member.name else ""
    headers = [
        ("From", formataddr((_clean(name), address), charset="utf-8")),
        ("To", formataddr((to_name, recipient), charset="utf-8") if to_name else recipient),
        ("Subject", header_value(_clean(rendered.subject))),
        ("Date", format_datetime(now)),
        ("Message-ID", _clean(mail.message_id)),
        ("Auto-Submitted", "auto-generated"),
    ]
    if not k.safety and mail.member_id is not None:
        url = absolute_url("/notices/unsubscribe/" + unsubscribe_token(mail.member_id, k.name))
        headers += [("List-Unsubscribe", f"<{url}>"), ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")]
    try:
        data = notice_mail(headers, text, html, invitation)
    except UnicodeEncodeError as exc:  # a header that is not ASCII by now is this mail's problem alone
        raise BuildError(f"cannot write the headers: {exc}") from None
    return BuiltMail(data=data, sender=address, recipient=recipient)
