"""Admin pages: machines (admin), members (admin), qualifications (steward and admin)."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select
from wtforms.fields.choices import SelectChoice

from ...auth import admin_required, steward_required
from ...domain import audit_actions
from ...extensions import db
from ...models import Machine, Member, Qualification, Role
from ...security import hash_password
from ...services import audit
from ...services import machines as machine_service
from ...services import members as member_service
from ..choices import options
from . import bp
from .forms import GrantForm, MachineForm, MemberForm


def _type_choices() -> list[SelectChoice]:
    return options((t.id, t.name) for t in machine_service.machine_types())


@bp.get("/machines")
@admin_required
def machines() -> Any:
    return render_template("admin/machines.html", machines=machine_service.list_machines(include_retired=True))


@bp.route("/machines/new", methods=["GET", "POST"])
@admin_required
def machine_new() -> Any:
    form = MachineForm()
    form.type_id.choices = _type_choices()
    if form.validate_on_submit():
        if db.session.scalar(select(Machine).where(Machine.slug == form.slug.data)):
            form.slug.errors.append("Another machine already uses this short name.")
        else:
            machine = Machine()
            form.populate_obj(machine)
            db.session.add(machine)
            db.session.commit()
            flash(f"Machine {machine.name} created.", "ok")
            return redirect(url_for("admin.machines"))
    status = 422 if request.method == "POST" else 200
    return render_template("admin/machine_form.html", form=form, machine=None), status


@bp.route("/machines/<slug>/edit", methods=["GET", "POST"])
@admin_required
def machine_edit(slug: str) -> Any:
    try:
        machine = machine_service.machine_by_slug(slug)
    except machine_service.NotFound:
        abort(404)
    form = MachineForm(obj=machine)
    form.type_id.choices = _type_choices()
    if form.validate_on_submit():
        clash = db.session.scalar(select(Machine).where(Machine.slug == form.slug.data, Machine.id != machine.id))
        if clash:
            form.slug.errors.append("Another machine already uses this short name.")
        else:
            form.populate_obj(machine)
            db.session.commit()
            flash(f"Machine {machine.name} saved.", "ok")
            return redirect(url_for("admin.machines"))
    status = 422 if request.method == "POST" else 200
    return render_template("admin/machine_form.html", form=form, machine=machine), status


@bp.get("/members")
@steward_required
def members() -> Any:
    q = request.args.get("q", "").strip()
    stmt = select(Member).order_by(Member.name)
    if q:
        like = f"%{q.lower()}%"
        stmt = stmt.where(Member.email.ilike(like) | Member.name.ilike(like))
    rows = list(db.session.scalars(stmt))
    return render_template("admin/members.html", members=rows, q=q)


@bp.route("/members/new", methods=["GET", "POST"])
@admin_required
def member_new() -> Any:
    form = MemberForm()
    if form.validate_on_submit():
        try:
            member = member_service.create_member(form.email.data, form.name.data, form.role.data,
                                                  form.password.data or None)
            _apply_credentials(member, form)
            audit.record(g.member, audit_actions.MEMBER_CREATED, target=member, detail={"role": member.role})
            db.session.commit()
        except member_service.MemberError as exc:
            db.session.rollback()
            form.email.errors.append(str(exc))
        else:
            flash(f"Member {member.name} (no. {member.member_no}) created.", "ok")
            return redirect(url_for("admin.member_detail", member_id=member.id))
    status = 422 if request.method == "POST" else 200
    return render_template("admin/member_form.html", form=form, member=None), status


def _apply_credentials(member: Member, form: MemberForm) -> None:
    member.share = float(form.share.data)
    if form.badge_uid.data:
        member_service.set_badge(member, form.badge_uid.data)
    if form.pin.data:
        member_service.set_pin(member, form.pin.data)


def _grant_form(member: Member) -> GrantForm:
    form = GrantForm(prefix="grant")
    form.scope.choices = options(
        [(f"type:{t.id}", f"All {t.name}") for t in machine_service.machine_types()]
        + [(f"machine:{m.id}", f"Only {m.name}") for m in machine_service.list_machines()]
    )
    return form


def _member_or_404(member_id: int) -> Member:
    member = db.session.get(Member, member_id)
    if member is None:
        abort(404)
    return member


@bp.route("/members/<id:member_id>", methods=["GET", "POST"])
@steward_required
def member_detail(member_id: int) -> Any:
    member = _member_or_404(member_id)
    form = MemberForm(obj=member)
    status = 200
    if request.method == "POST":
        if not g.member.has_role(Role.ADMIN):
            abort(403)
        if member.deleted_at is not None:  # the page shows no form; a hand-made POST must not undo the deletion
            abort(409, "This account was deleted: its name and email are gone for good and cannot be edited.")
        if form.validate_on_submit():
            clash = member_service.member_by_email(form.email.data)
            if clash is not None and clash.id != member.id:
                form.email.errors.append("Another member uses this email.")
            elif member.id == g.member.id and form.role.data != Role.ADMIN:
                form.role.errors.append("You cannot remove your own admin role.")
            else:
                try:
                    member.name = form.name.data
                    member.email = form.email.data.strip().lower()
                    if member.role != form.role.data:
                        audit.record(g.member, audit_actions.ROLE_CHANGED, target=member,
                                     detail={"from": member.role, "to": form.role.data})
                    member.role = form.role.data
                    if form.password.data:
                        member.password_hash = hash_password(form.password.data)
                    _apply_credentials(member, form)
                    db.session.commit()
                    flash("Saved.", "ok")
                    return redirect(url_for("admin.member_detail", member_id=member.id))
                except member_service.MemberError as exc:
                    db.session.rollback()
                    form.badge_uid.errors.append(str(exc))
        status = 422
    quals = list(db.session.scalars(select(Qualification).where(Qualification.member_id == member.id)))
    return render_template("admin/member_detail.html", member=member, form=form, quals=quals,
                           grant_form=_grant_form(member), now=datetime.now(UTC)), status


@bp.post("/members/<id:member_id>/qualifications")
@steward_required
def grant(member_id: int) -> Any:
    member = _member_or_404(member_id)
    form = _grant_form(member)
    if not form.validate_on_submit():
        flash("Choose what the member is qualified for. " + "; ".join(
            e for errs in form.errors.values() for e in errs), "error")
        return redirect(url_for("admin.member_detail", member_id=member.id))
    kind, _, ident = form.scope.data.partition(":")
    expires = None
    if form.expires.data:
        local_end = datetime.combine(form.expires.data, time(23, 59), tzinfo=current_app.config["TZ"])
        expires = local_end.astimezone(UTC)
    if kind == "type":
        mtype = next(t for t in machine_service.machine_types() if t.id == int(ident))
        machine_service.grant(member, by=g.member, machine_type=mtype, expires_at=expires, note=form.note.data or "")
    else:
        machine = db.session.get(Machine, int(ident))
        if machine is None:
            abort(404)
        machine_service.grant(member, by=g.member, machine=machine, expires_at=expires, note=form.note.data or "")
    db.session.commit()
    flash("Qualification granted.", "ok")
    return redirect(url_for("admin.member_detail", member_id=member.id))


@bp.post("/qualifications/<id:qual_id>/revoke")
@steward_required
def revoke(qual_id: int) -> Any:
    qual = db.session.get(Qualification, qual_id)
    if qual is None:
        abort(404)
    member_id = qual.member_id
    machine_service.revoke(qual, by=g.member)
    db.session.commit()
    flash("Qualification revoked.", "ok")
    return redirect(url_for("admin.member_detail", member_id=member_id))
