"""Staff pages of joining: invite people (one or many addresses), the invitations still open (send again,
withdraw), and the sign-ups waiting for approval (approve, reject). Stewards and admins."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, redirect, render_template, url_for

from ...auth import steward_required
from ...domain import joining as rules
from ...extensions import db
from ...models.types import utcnow
from ...services import joining
from ..choices import options
from . import bp
from .forms import InviteForm, RejectForm


def _invite_form() -> InviteForm:
    form = InviteForm()
    form.role.choices = options((r.value, r.value.capitalize()) for r in joining.invitable_roles(g.member))
    return form


def _invitations_page(form: InviteForm | None = None, error: str | None = None, status: int = 200,
                      invalid: list[str] | None = None) -> Any:
    now = utcnow()
    return render_template("join/invitations.html", form=form or _invite_form(), invitations=joining.invitations(now),
                           now=now, error=error, invalid=invalid or [], mode=joining.mode()), status


@bp.get("/invitations")
@steward_required
def invitations() -> Any:
    return _invitations_page()


@bp.post("/invitations")
@steward_required
def invite() -> Any:
    form = _invite_form()
    if not form.validate_on_submit():
        return _invitations_page(form, status=422)
    parsed = rules.parse_addresses(form.addresses.data)
    if parsed.invalid or not parsed.addresses:
        # Nothing is sent until every line is an address: the list stays in the form to fix.
        return _invitations_page(form, "Nothing was sent: fix the entries that are not email addresses."
                                 if parsed.invalid else "Nothing was sent: the list has no address.",
                                 422, parsed.invalid)
    try:
        result = joining.invite(g.member, parsed.addresses, utcnow(), name=form.name.data or None,
                                role=form.role.data)
    except joining.JoinRefused as exc:
        db.session.rollback()
        return _invitations_page(form, exc.message, exc.status)
    db.session.commit()
    if result.invited:
        flash(f"Invitation sent to {', '.join(result.invited)}.", "ok")
    for address, why in result.skipped:
        flash(f"Not invited: {address} {why}.", "error")
    return redirect(url_for("join.invitations"))


def _act_on_invitation(link_id: int, action: str) -> Any:
    try:
        if action == "resend":
            link = joining.resend_invitation(g.member, link_id, utcnow())
            message = f"A new invitation went to {link.email}; the old link no longer works."
        else:
            link = joining.revoke_invitation(g.member, link_id, utcnow())
            message = f"The invitation to {link.email} was withdrawn; its link no longer works."
    except LookupError:
        db.session.rollback()
        abort(404, "There is no such invitation.")
    except joining.JoinRefused as exc:
        db.session.rollback()
        return _invitations_page(error=exc.message, status=exc.status)
    db.session.commit()
    flash(message, "ok")
    return redirect(url_for("join.invitations"))


@bp.post("/invitations/<id:link_id>/resend")
@steward_required
def resend_invitation(link_id: int) -> Any:
    return _act_on_invitation(link_id, "resend")


@bp.post("/invitations/<id:link_id>/revoke")
@steward_required
def revoke_invitation(link_id: int) -> Any:
    return _act_on_invitation(link_id, "revoke")


def _approvals_page(error: str | None = None, status: int = 200) -> Any:
    return render_template("join/approvals.html", pending=joining.pending_approval(), reject_form=RejectForm(),
                           error=error, approval=joining.approval_required()), status


@bp.get("/approvals")
@steward_required
def approvals() -> Any:
    return _approvals_page()


def _decide(member_id: int, decision: str) -> Any:
    form = RejectForm()
    if not form.validate_on_submit():
        return _approvals_page("The reason is at most 300 characters.", 422)
    try:
        if decision == "approve":
            member = joining.approve(g.member, member_id, utcnow())
            message = f"{member.name} is approved and was told so. " + (
                "They can book now." if member.email_verified_at else "They can book once they confirm their address.")
        else:
            member = joining.reject(g.member, member_id, utcnow(), form.reason.data or "")
            message = f"The sign-up of {member.name} was rejected and they were told so."
    except LookupError:
        db.session.rollback()
        abort(404, "There is no such member.")
    except joining.JoinRefused as exc:
        db.session.rollback()
        return _approvals_page(exc.message, exc.status)
    db.session.commit()
    flash(message, "ok")
    return redirect(url_for("join.approvals"))


@bp.post("/approvals/<id:member_id>/approve")
@steward_required
def approve(member_id: int) -> Any:
    return _decide(member_id, "approve")


@bp.post("/approvals/<id:member_id>/reject")
@steward_required
def reject(member_id: int) -> Any:
    return _decide(member_id, "reject")
