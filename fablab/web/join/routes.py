"""The public side of joining: sign up, confirm the address, accept an invitation, forgot/reset password.

A link that does not work (expired, used, replaced, forged) gets its own page with the status that says so
(410, 404, 400) and the way to a new link; nothing changes. Pages that make the lab send a mail are throttled
per source, and the ones that must not tell whether an address has an account answer the same, in the same
time, either way.
"""

from __future__ import annotations

import time
from typing import Any

from flask import abort, g, render_template, request

from ...auth import login_required, public
from ...database import begin_write
from ...domain import joining as rules
from ...extensions import db
from ...models.types import utcnow
from ...services import account_links, joining, password_reset, throttle
from ...services import members as member_service
from ..auth.login_flow import finish_login
from . import bp
from .forms import AcceptForm, ForgotForm, ResetForm, SignupForm, TokenForm

# The pages that must not tell whether an address has an account answer no sooner than this: creating an
# account (a password hash, rows, a mail) must look the same as not creating one.
ANSWER_FLOOR_SECONDS = 0.6


def _answer_after(started: float) -> None:
    rest = ANSWER_FLOOR_SECONDS - (time.monotonic() - started)
    if rest > 0:
        time.sleep(rest)


def _throttled(action: str) -> str | None:
    """Count this request against its source's mail budget; a message when it is spent (nothing is sent)."""
    budgets = account_links.mail_budgets(action, request.remote_addr)
    now = utcnow()
    wait = throttle.seconds_locked(budgets, now)
    if wait:
        return (f"Too many requests from this network. Try again in {throttle.describe_wait(wait)}.")
    throttle.record_failure(budgets, now)  # commits: the request counts even if it then fails
    begin_write()
    return None


def _link_refused(exc: account_links.LinkRefused) -> Any:
    db.session.rollback()
    return render_template("join/link_refused.html", refused=exc), exc.status


def _sent(kind: str, status: int = 200) -> Any:
    return render_template("join/sent.html", kind=kind), status


@bp.route("/signup", methods=["GET", "POST"])
@public
def signup() -> Any:
    if joining.mode() != "open":
        abort(404, "This lab does not take sign-ups online. Ask the lab's staff for an invitation.")
    form = SignupForm()
    if request.method == "POST" and form.validate_on_submit():
        started = time.monotonic()
        refused = _throttled("signup")
        if refused:
            return render_template("join/signup.html", form=form, error=refused), 429
        try:
            joining.sign_up(form.email.data, form.name.data, form.password.data, utcnow())
        except member_service.MemberError as exc:  # no free member number after many tries: say so, keep the form
            db.session.rollback()
            return render_template("join/signup.html", form=form, error=f"{exc}"), 503
        db.session.commit()
        _answer_after(started)
        return _sent("signup")
    status = 422 if request.method == "POST" else 200
    return render_template("join/signup.html", form=form, error=None), status


@bp.get("/verify")
@public
def verify_page() -> Any:
    token = request.args.get("token")
    try:
        account_links.check(rules.VERIFY, token, utcnow())
    except account_links.LinkRefused as exc:
        return _link_refused(exc)
    # Confirming takes a press: mail scanners that open links must not spend them.
    return render_template("join/verify.html", form=TokenForm(token=token))


@bp.post("/verify")
@public
def verify() -> Any:
    form = TokenForm()
    if not form.validate_on_submit():
        abort(400, "The confirmation form was incomplete: open the link from the mail again.")
    try:
        member = joining.verify(form.token.data, utcnow())
    except account_links.LinkRefused as exc:
        return _link_refused(exc)
    db.session.commit()
    waiting = "" if member.approved else " The lab's staff will now look at your sign-up; you will get a mail."
    if g.get("member") is not None and g.member.id == member.id:
        return render_template("join/verified.html", member=member, waiting=waiting, signed_in=True)
    return render_template("join/verified.html", member=member, waiting=waiting, signed_in=False)


@bp.get("/verify/again")
@login_required
def resend_verification_page() -> Any:
    return render_template("join/resend.html", error=None)


@bp.post("/verify/again")
@login_required
def resend_verification() -> Any:
    if g.member.email_verified_at is not None:
        return render_template("join/resend.html", error="Your email address is confirmed already."), 409
    refused = _throttled("resend")
    if refused:
        return render_template("join/resend.html", error=refused), 429
    joining.send_verification(g.member, utcnow())
    db.session.commit()
    return _sent("verify")


@bp.route("/invite", methods=["GET", "POST"])
@public
def accept() -> Any:
    now = utcnow()
    form = AcceptForm()
    token = form.token.data if request.method == "POST" else request.args.get("token")
    try:
        link = account_links.check(rules.INVITE, token, now)
    except account_links.LinkRefused as exc:
        return _link_refused(exc)
    if request.method == "GET":
        form = AcceptForm(token=token, name=link.name or "")
        return render_template("join/accept.html", form=form, link=link, error=None)
    if not form.validate_on_submit():
        return render_template("join/accept.html", form=form, link=link, error=None), 422
    try:
        member = joining.accept_invitation(token, form.name.data, form.password.data, form.pin.data or None, now)
    except account_links.LinkRefused as exc:  # used by a second tab a moment ago
        return _link_refused(exc)
    except (joining.JoinRefused, member_service.MemberError) as exc:
        db.session.rollback()
        message = exc.message if isinstance(exc, joining.JoinRefused) else str(exc)
        return render_template("join/accept.html", form=form, link=link, error=message), 409
    return finish_login(member, method="invite")


@bp.route("/forgot", methods=["GET", "POST"])
@public
def forgot() -> Any:
    form = ForgotForm()
    if request.method == "POST" and form.validate_on_submit():
        started = time.monotonic()
        refused = _throttled("reset")
        if refused:
            return render_template("join/forgot.html", form=form, error=refused), 429
        password_reset.request_reset(form.email.data, utcnow())
        db.session.commit()
        _answer_after(started)
        return _sent("reset")
    status = 422 if request.method == "POST" else 200
    return render_template("join/forgot.html", form=form, error=None), status


@bp.route("/reset", methods=["GET", "POST"])
@public
def reset() -> Any:
    now = utcnow()
    form = ResetForm()
    token = form.token.data if request.method == "POST" else request.args.get("token")
    try:
        member = password_reset.check(token, now)
    except account_links.LinkRefused as exc:
        return _link_refused(exc)
    if request.method == "GET":
        return render_template("join/reset.html", form=ResetForm(token=token), member=member)
    if not form.validate_on_submit():
        return render_template("join/reset.html", form=form, member=member), 422
    try:
        member = password_reset.reset(token, form.password.data, now)
    except account_links.LinkRefused as exc:
        return _link_refused(exc)
    return finish_login(member, method="reset")


@bp.after_request
def _no_referrer(resp: Any) -> Any:
    # These pages carry a one-time link's token in their address: no page they lead to learns it.
    resp.headers["Referrer-Policy"] = "no-referrer"
    return resp
