"""Thin views over services/own_data.py and services/account_deletion.py."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, redirect, render_template, send_file, url_for

from ...auth import admin_required, login_required, sign_out, steward_required
from ...extensions import db
from ...models import Member
from ...models.types import utcnow
from ...services import account_deletion as deletion
from ...services import own_data
from . import bp
from .forms import EmailConfirmForm, MemberNoForm, PasswordConfirmForm, PlainForm


def _confirm_form() -> PasswordConfirmForm | EmailConfirmForm:
    return EmailConfirmForm() if deletion.sso_only(g.member) else PasswordConfirmForm()


def _page(form: Any = None, status: int = 200, error: str | None = None) -> Any:
    me: Member = g.member
    return render_template("privacy/mine.html", form=form or _confirm_form(), error=error,
                           obligations=deletion.obligations(me, utcnow()), pending=deletion.pending_request(me),
                           withdraw_form=PlainForm(), sso_only=deletion.sso_only(me)), status


@bp.get("/")
@login_required
def mine() -> Any:
    return _page()


@bp.get("/my-data.zip")
@login_required
def download() -> Any:
    now = utcnow()
    out = own_data.export_zip(g.member, now)  # a temporary file, closed (and so removed) when sent
    resp = send_file(out, mimetype="application/zip", as_attachment=True,
                     download_name=f"my-data-{g.member.member_no}-{now:%Y-%m-%d}.zip")
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.post("/delete")
@login_required
def delete_mine() -> Any:
    form = _confirm_form()
    if not form.validate_on_submit():
        return _page(form, 422)
    if not deletion.confirmation_ok(g.member, form.confirm.data):
        form.confirm.errors.append("This is not your email address." if deletion.sso_only(g.member)
                                   else "This is not your password.")
        return _page(form, 422)
    try:
        outcome = deletion.request_deletion(g.member, utcnow())
    except deletion.DeletionRefused as exc:
        db.session.rollback()
        return _page(form, exc.status, error=exc.message)
    if outcome == "pending":
        db.session.commit()
        flash("Your request is with the lab's staff: they confirm it once what you hold is handled, "
              "or talk to you first.", "ok")
        return redirect(url_for("privacy.mine"))
    sign_out()
    db.session.commit()
    flash("Your account is deleted. Thank you for making things here.", "ok")
    return redirect(url_for("auth.login"))


@bp.post("/delete/withdraw")
@login_required
def withdraw() -> Any:
    if not PlainForm().validate_on_submit():
        abort(400)
    if deletion.withdraw_request(g.member):
        db.session.commit()
        flash("Your deletion request is withdrawn. Your account stays.", "ok")
    return redirect(url_for("privacy.mine"))


# --- staff ----------------------------------------------------------------------------------------------


def _requests_page(status: int = 200, error: str | None = None) -> Any:
    now = utcnow()
    rows = [(r, deletion.obligations(r.member, now)) for r in deletion.pending_requests()]
    return render_template("privacy/requests.html", rows=rows, form=PlainForm(), error=error), status


@bp.get("/requests")
@steward_required
def requests() -> Any:
    return _requests_page()


def _member_or_404(member_id: int) -> Member:
    member = db.session.get(Member, member_id)
    if member is None:
        abort(404)
    return member


@bp.post("/requests/<id:member_id>/confirm")
@steward_required
def confirm(member_id: int) -> Any:
    member = _member_or_404(member_id)
    if not PlainForm().validate_on_submit() or deletion.pending_request(member) is None:
        return _requests_page(409, "There is no pending deletion request for this member (any more).")
    try:
        deletion.delete_account(member, g.member, utcnow())
    except deletion.DeletionRefused as exc:
        db.session.rollback()
        return _requests_page(exc.status, exc.message)
    flash(f"The account is deleted: it is {member.pseudonym} now.", "ok")
    return redirect(url_for("privacy.requests"))


@bp.post("/requests/<id:member_id>/decline")
@steward_required
def decline(member_id: int) -> Any:
    member = _member_or_404(member_id)
    if not PlainForm().validate_on_submit():
        return _requests_page(400, "The form expired. Try again.")
    if deletion.withdraw_request(member):
        db.session.commit()
        flash(f"The request of {member.name} is set aside; tell them why.", "ok")
    return redirect(url_for("privacy.requests"))


def _member_page(member: Member, form: MemberNoForm, status: int = 200, error: str | None = None) -> Any:
    return render_template("privacy/member_delete.html", member=member, form=form, error=error,
                           obligations=deletion.obligations(member, utcnow())), status


@bp.route("/members/<id:member_id>/delete", methods=["GET", "POST"])
@admin_required
def delete_member(member_id: int) -> Any:
    member = _member_or_404(member_id)
    form = MemberNoForm()
    if member.id == g.member.id:
        return _member_page(member, form, 409, "This is your own account: delete it from your own data page.")
    if deletion.is_deleted(member):
        return _member_page(member, form, 409, "This account is already deleted.")
    if not form.is_submitted():
        return _member_page(member, form)
    if not form.validate_on_submit() or form.member_no.data.strip() != str(member.member_no):
        form.member_no.errors.append(f"Type {member.member_no} to confirm.")
        return _member_page(member, form, 422)
    try:
        deletion.delete_account(member, g.member, utcnow())
    except deletion.DeletionRefused as exc:
        db.session.rollback()
        return _member_page(member, form, exc.status, exc.message)
    flash(f"The account is deleted: it is {member.pseudonym} now.", "ok")
    return redirect(url_for("admin.member_detail", member_id=member.id))
