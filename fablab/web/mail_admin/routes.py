"""Outbox and sent mail pages, admins only. Views are thin: fablab/services/mail_outbox_admin.py acts on the
outbox, fablab/services/sent_mail.py reads the demo sink's Maildir."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for

from ...auth import admin_required
from ...domain import bounded
from ...extensions import db
from ...models.types import utcnow
from ...services import mail_outbox_admin as outbox
from ...services import sent_mail
from . import bp

SENT_PER_PAGE = 50


@bp.app_context_processor
def _nav() -> dict[str, Any]:
    # A callable: the admin navigation asks only on the pages that show it.
    return {"sent_mail_available": sent_mail.available}


def _page_arg() -> int:
    try:
        return bounded.parse_int(request.args.get("page") or "1", "page", 1, 1_000_000)
    except bounded.InputError:
        return 1  # a page link mangled by hand shows the first page


@bp.get("/outbox")
@admin_required
def outbox_page() -> Any:
    return render_template("mail_admin/outbox.html", counts=outbox.counts(), failed=outbox.failed(_page_arg()),
                           sent_available=sent_mail.available())


def _act(mail_id: int, action: str) -> Any:
    try:
        if action == "retry":
            mail = outbox.retry_now(mail_id, utcnow())
            message = f"The mail to {mail.to_address} goes out again with the next delivery round."
        else:
            mail = outbox.discard(mail_id)
            message = f"The mail to {mail.to_address} was discarded."
    except LookupError:
        db.session.rollback()
        abort(404, "There is no such mail in the outbox.")
    except outbox.OutboxRefused as exc:
        db.session.rollback()
        abort(409, str(exc))
    db.session.commit()
    flash(message, "ok")
    return redirect(url_for("mail_admin.outbox_page", page=_page_arg()))


@bp.post("/outbox/<id:mail_id>/retry")
@admin_required
def retry(mail_id: int) -> Any:
    return _act(mail_id, "retry")


@bp.post("/outbox/<id:mail_id>/discard")
@admin_required
def discard(mail_id: int) -> Any:
    return _act(mail_id, "discard")


def _sink_or_404() -> None:
    if not sent_mail.available():
        abort(404, "Sent mail is shown only in the demo, where an embedded SMTP sink keeps what was sent. "
                   "With a real mail server, see the outbox.")


@bp.get("/sent")
@admin_required
def sent() -> Any:
    _sink_or_404()
    page = _page_arg()
    rows, total = sent_mail.page(page, SENT_PER_PAGE)
    pages = max(1, -(-total // SENT_PER_PAGE))
    return render_template("mail_admin/sent.html", rows=rows, total=total, page=page, pages=pages,
                           sent_available=True)


@bp.get("/sent/<key>")
@admin_required
def sent_one(key: str) -> Any:
    _sink_or_404()
    found = sent_mail.one(key)
    if found is None:
        abort(404, "There is no such mail in the demo's sent mail.")
    row, mail = found
    return render_template("mail_admin/sent_one.html", row=row, mail=mail, sent_available=True)
