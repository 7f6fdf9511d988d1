"""Webhook admin pages (admin only; every form carries its CSRF token). Views are thin: fablab/services/
webhooks.py holds the logic; nothing is sent from here (a ping or redelivery is queued for `fablab notify`)."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for

from ...auth import admin_required
from ...domain import bounded
from ...extensions import db
from ...models.types import utcnow
from ...models.webhooks import Webhook
from ...services import webhooks as hook_service
from . import bp
from .forms import ActionForm, WebhookForm

MAX_PAGE = 100_000


def _hook(hook_id: int) -> Webhook:
    hook = hook_service.get(hook_id)
    if hook is None:
        abort(404)
    return hook


def _checked_action() -> None:
    if not ActionForm().validate_on_submit():
        abort(400, "The form expired; reload the page and try again.")


def _show_secret(hook: Webhook, secret: str, created: bool) -> Any:
    # The secret is shown in this answer only (never stored, never put in a URL or the session).
    resp = render_template("webhooks/secret.html", hook=hook, secret=secret, created=created)
    return resp, 201 if created else 200, {"Cache-Control": "no-store"}


@bp.get("")
@admin_required
def index() -> Any:
    hooks = hook_service.hooks()
    types = {h.id: hook_service.event_types_of(h) for h in hooks}
    return render_template("webhooks/index.html", hooks=hooks, types=types,
                           counts=hook_service.counts(h.id for h in hooks))


@bp.route("/new", methods=["GET", "POST"])
@admin_required
def new() -> Any:
    form = WebhookForm()
    if form.validate_on_submit():
        try:
            hook, secret = hook_service.create(form.url.data, form.description.data or "", form.events.data or [],
                                               created_by=g.member.id, now=utcnow())
        except hook_service.WebhookError as exc:
            db.session.rollback()
            (form.events if exc.code == "no_events" else form.url).errors.append(str(exc))
        else:
            db.session.commit()
            return _show_secret(hook, secret, created=True)
    status = 422 if request.method == "POST" else 200
    return render_template("webhooks/form.html", form=form, hook=None), status


@bp.route("/<id:hook_id>/edit", methods=["GET", "POST"])
@admin_required
def edit(hook_id: int) -> Any:
    hook = _hook(hook_id)
    form = WebhookForm(obj=hook)
    if request.method == "GET":
        form.events.data = hook_service.event_types_of(hook)
    if form.validate_on_submit():
        try:
            hook_service.update(hook, form.url.data, form.description.data or "", form.events.data or [])
        except hook_service.WebhookError as exc:
            db.session.rollback()
            (form.events if exc.code == "no_events" else form.url).errors.append(str(exc))
        else:
            db.session.commit()
            flash("Webhook saved.", "ok")
            return redirect(url_for("webhooks.index"))
    status = 422 if request.method == "POST" else 200
    return render_template("webhooks/form.html", form=form, hook=hook), status


@bp.post("/<id:hook_id>/rotate")
@admin_required
def rotate(hook_id: int) -> Any:
    hook = _hook(hook_id)
    _checked_action()
    secret = hook_service.rotate(hook)
    db.session.commit()
    return _show_secret(hook, secret, created=False)


@bp.post("/<id:hook_id>/ping")
@admin_required
def ping(hook_id: int) -> Any:
    hook = _hook(hook_id)
    _checked_action()
    hook_service.queue_ping(hook, utcnow())
    db.session.commit()
    note = "" if hook.active else " It waits until the webhook is enabled."
    flash(f"Ping queued; it goes out with the next delivery run.{note}", "ok")
    return redirect(url_for("webhooks.deliveries", hook_id=hook.id))


@bp.post("/<id:hook_id>/enable")
@admin_required
def enable(hook_id: int) -> Any:
    hook = _hook(hook_id)
    _checked_action()
    hook_service.enable(hook, utcnow())
    db.session.commit()
    flash("Webhook enabled.", "ok")
    return redirect(url_for("webhooks.index"))


@bp.post("/<id:hook_id>/disable")
@admin_required
def disable(hook_id: int) -> Any:
    hook = _hook(hook_id)
    _checked_action()
    hook_service.disable(hook, f"Disabled by {g.member.name}.", utcnow())
    db.session.commit()
    flash("Webhook disabled: nothing is sent to it until it is enabled again.", "ok")
    return redirect(url_for("webhooks.index"))


@bp.post("/<id:hook_id>/delete")
@admin_required
def delete(hook_id: int) -> Any:
    hook = _hook(hook_id)
    _checked_action()
    hook_service.delete(hook)
    db.session.commit()
    flash("Webhook deleted, with its delivery log.", "ok")
    return redirect(url_for("webhooks.index"))


@bp.get("/<id:hook_id>/deliveries")
@admin_required
def deliveries(hook_id: int) -> Any:
    hook = _hook(hook_id)
    try:
        page = bounded.parse_int(request.args.get("page", "1"), "page", 1, MAX_PAGE)
    except bounded.InputError as exc:
        abort(400, str(exc))
    rows, pages = hook_service.deliveries(hook, page)
    return render_template("webhooks/deliveries.html", hook=hook, rows=rows, page=page, pages=pages)


@bp.post("/<id:hook_id>/deliveries/<id:delivery_id>/redeliver")
@admin_required
def redeliver(hook_id: int, delivery_id: int) -> Any:
    hook = _hook(hook_id)
    _checked_action()
    delivery = hook_service.delivery_of(hook, delivery_id)
    if delivery is None:
        abort(404)
    hook_service.redeliver(delivery, utcnow())
    db.session.commit()
    flash("Queued again with the same body and delivery id.", "ok")
    return redirect(url_for("webhooks.deliveries", hook_id=hook.id))
