"""Member import (upload → preview → confirm) and export, for admins.

Export is admin-only too: the file holds every member's email and role, more than a steward needs for
their daily work (they still see members one by one on the members page)."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from flask import Response, flash, g, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from werkzeug.exceptions import RequestEntityTooLarge

from ...auth import admin_required
from ...domain import member_csv
from ...extensions import db
from ...models.types import utcnow
from ...services import member_export
from ...services import member_import as svc
from ..bookings.refusals import Action, Refusal
from . import bp

_SPREADSHEETS = (".xlsx", ".xls", ".ods", ".numbers")


class ImportForm(FlaskForm):
    """CSRF only: the file is read from request.files with its own limits."""


def _refused(message: str, status: int = 422) -> Any:
    refusal = Refusal("import_refused", [message],
                      [Action("Download the current list as a template", url_for("member_io.export"), method="get")])
    # formdata=None: after a 413 the request body must not be read again.
    return render_template("member_io/upload.html", form=ImportForm(formdata=None), refusal=refusal,
                           limit_mb=member_csv.MAX_BYTES // (1024 * 1024)), status


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(_err: RequestEntityTooLarge) -> Any:
    return _refused(f"The file is larger than {member_csv.MAX_BYTES // (1024 * 1024)} MB. Split it into smaller "
                    "files.", 413)


@bp.get("/admin/members/import")
@admin_required
def upload() -> Any:
    return render_template("member_io/upload.html", form=ImportForm(), refusal=None,
                           limit_mb=member_csv.MAX_BYTES // (1024 * 1024))


@bp.post("/admin/members/import")
@admin_required
def preview() -> Any:
    if not ImportForm().validate_on_submit():
        return _refused("The form expired. Choose the file again.", 400)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _refused("Choose a CSV file to import.")
    if PurePath(upload.filename).suffix.lower() in _SPREADSHEETS:
        return _refused("This is a spreadsheet file, not CSV. In your spreadsheet, save it as “CSV UTF-8” and "
                        "upload that file.")
    data = upload.stream.read(member_csv.MAX_BYTES + 1)
    plan = svc.preview(data, g.member)
    if plan.refusal:
        return _refused(plan.refusal)
    token = svc.stash(data, g.member, utcnow())
    return _preview_page(plan, token, None)


def _preview_page(plan: svc.Preview, token: str, message: str | None, status: int = 200) -> Any:
    return render_template("member_io/preview.html", plan=plan, token=token, form=ImportForm(formdata=None),
                           message=message,
                           CREATE=svc.CREATE, CHANGE=svc.CHANGE, UNCHANGED=svc.UNCHANGED), status


@bp.post("/admin/members/import/<token>")
@admin_required
def confirm(token: str) -> Any:
    if not ImportForm().validate_on_submit():
        return _refused("The form expired. Choose the file again.", 400)
    data = svc.stashed(token, g.member)
    if data is None:
        return _refused("This import is no longer available (it was done, or is older than two hours). "
                        "Choose the file again.", 404)
    try:
        done = svc.apply(data, g.member, only_valid=request.form.get("only_valid") == "1", now=utcnow())
    except svc.ImportRefused as exc:
        db.session.rollback()
        return _preview_page(exc.preview, token, str(exc), 422)
    db.session.commit()
    svc.discard(token, g.member)
    skipped = f", {done.skipped} row(s) with errors left out" if done.skipped else ""
    flash(f"Import done: {done.created} created, {done.changed} changed, {done.unchanged} unchanged{skipped}.", "ok")
    return redirect(url_for("admin.members"))


@bp.get("/admin/members/export.csv")
@admin_required
def export() -> Any:
    name = f"members-{utcnow():%Y-%m-%d}.csv"
    return Response(member_export.members_csv(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})
