"""A member's notices: the list (mark read one or all), the top bar's unread count, the preferences, and
the one-click unsubscribe link mails carry (RFC 8058)."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, g, make_response, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError, validate_csrf
from wtforms.validators import ValidationError

from ...auth import login_required, public
from ...domain import bounded
from ...domain.notice_kinds import BY_NAME, Channel
from ...extensions import csrf, db
from ...models import Member
from ...models.types import utcnow
from ...services import notices as svc
from ...services import sessions
from ...services.notify import read_unsubscribe_token, settings_for
from . import bp
from .forms import kind_field, preferences_form

CHANGED = "notices-changed"  # the event the top bar's badge listens for (HX-Trigger)


# --- the top bar's count -----------------------------------------------------------------------------------


@bp.before_app_request
def _count_without_touching_the_session() -> Any:
    """The badge polls every 30 s; if that counted as activity, an open tab would keep a session alive for
    ever. So the count is answered here, before the app's sign-in hook (fablab/auth.py) records the use:
    this blueprint's app hooks are registered before it. The session is looked up read-only."""
    if request.endpoint != "notices.count":
        return None
    row = sessions.find(session.get("sid"), sessions.WEB, utcnow(), current_app.permanent_session_lifetime)
    g.member = row.member if row is not None else None
    g.member_session = row
    return count()


@bp.get("/notices/count")
def count() -> Any:
    """The badge's partial. Signed out: htmx's 286 stops the polling (a plain request goes to sign in)."""
    member: Member | None = g.get("member")
    if member is None:
        if request.headers.get("HX-Request"):
            return "", 286
        return redirect(url_for("auth.login", next=url_for("notices.index")))
    resp = make_response(render_template("notices_pages/_count.html", unread=svc.unread_count(member.id)))
    resp.headers["Cache-Control"] = "no-store"
    return resp


# --- the list ------------------------------------------------------------------------------------------------


@bp.get("/notices")
@login_required
def index() -> Any:
    raw = request.args.get("page")
    number = bounded.parse_int(raw, "page", 1, 100_000) if raw else 1
    page = svc.page_of(g.member.id, number)
    return render_template("notices_pages/index.html", page=page, summary=svc.summary,
                           unread=svc.unread_count(g.member.id))


def _changed(resp: Any) -> Any:
    resp.headers["HX-Trigger"] = CHANGED
    return resp


@bp.post("/notices/<id:notice_id>/read")
@login_required
def read(notice_id: int) -> Any:
    notice = svc.mark_read(g.member.id, notice_id, utcnow())
    if notice is None:
        abort(404, "There is no such notice of yours.")
    db.session.commit()
    if request.headers.get("HX-Request"):
        return _changed(make_response(render_template("notices_pages/_item.html", n=notice, summary=svc.summary)))
    return redirect(url_for("notices.index"))


@bp.post("/notices/read-all")
@login_required
def read_all() -> Any:
    marked = svc.mark_all_read(g.member.id, utcnow())
    db.session.commit()
    flash(f"Marked {marked} notice{'' if marked == 1 else 's'} read.", "ok")
    return redirect(url_for("notices.index"))


# --- preferences ---------------------------------------------------------------------------------------------


def _groups(member: Member) -> list[tuple[str, list[Any]]]:
    groups: dict[str, list[Any]] = {}
    for k in svc.visible_kinds(member):
        groups.setdefault(k.group, []).append(k)
    return list(groups.items())


@bp.route("/notices/preferences", methods=["GET", "POST"])
@login_required
def preferences() -> Any:
    member: Member = g.member
    kinds = svc.visible_kinds(member)
    channels = svc.channels_for(member)
    settings = settings_for(member.id)
    form = preferences_form(kinds, channels, data=None if request.method == "POST" else {
        "reminder_minutes": settings.reminder_minutes, "digest": settings.digest,
        "digest_hour": settings.digest_hour})
    status = 200
    if request.method == "POST":
        if form.validate():
            choices = {k.name: Channel(kind_field(form, k.name).data) for k in kinds if not k.safety}
            try:
                svc.save_preferences(member, choices, reminder_minutes=form.reminder_minutes.data,
                                     digest=bool(form.digest.data), digest_hour=form.digest_hour.data, now=utcnow())
            except svc.PreferenceRefused as refused:
                db.session.rollback()
                form.form_errors.append(refused.message)
            else:
                db.session.commit()
                flash("Your notice preferences are saved.", "ok")
                return redirect(url_for("notices.preferences"))
        status = 422
    return render_template("notices_pages/preferences.html", form=form, groups=_groups(member),
                           kind_field=kind_field, label=svc.kind_label, why=svc.safety_why), status


# --- one-click unsubscribe (RFC 8058) ----------------------------------------------------------------------


def _broken() -> Any:
    return render_template("notices_pages/unsubscribe.html", state="broken"), 400


@bp.route("/notices/unsubscribe/<token>", methods=["GET", "POST"])
@public  # the signed token names the member and the kind: it is the authority, not a session
@csrf.exempt  # mail clients POST `List-Unsubscribe=One-Click` with no cookie and no CSRF token
def unsubscribe(token: str) -> Any:
    found = read_unsubscribe_token(token)
    if found is None:
        return _broken()
    member_id, kind_name = found
    member = db.session.get(Member, member_id)
    if member is None:
        return _broken()
    k = BY_NAME[kind_name]
    page = {"kind": k, "label": svc.kind_label(k.name), "token": token}
    if k.safety:
        return render_template("notices_pages/unsubscribe.html", state="safety", why=svc.safety_why(k.name),
                               **page), 200 if request.method == "GET" else 409
    if request.method == "GET":
        already = svc.current_channel(member_id, k.name) is not Channel.EMAIL
        return render_template("notices_pages/unsubscribe.html", state="ask", already=already, **page)
    one_click = request.form.get("List-Unsubscribe") == "One-Click"
    if not one_click:
        try:
            validate_csrf(request.form.get("csrf_token"))
        except (ValidationError, CSRFError):
            return render_template("notices_pages/unsubscribe.html", state="expired", **page), 400
    svc.unsubscribe(member_id, k.name)
    db.session.commit()
    if one_click:
        return "Unsubscribed.", 200, {"Content-Type": "text/plain; charset=utf-8"}
    return render_template("notices_pages/unsubscribe.html", state="done", **page)


@bp.app_context_processor
def _badge() -> dict[str, Any]:
    """For the top bar: the signed-in member's unread count, computed only when the template asks."""
    def unread_notices() -> int:
        member = g.get("member")
        return svc.unread_count(member.id) if member is not None else 0
    return {"unread_notices": unread_notices}
