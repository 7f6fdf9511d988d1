"""Joining the lab: sign-up, email confirmation, accepting an invitation, password reset (public pages),
and the staff pages for invitations and approvals."""

from flask import Blueprint

bp = Blueprint("join", __name__, url_prefix="/join")

from . import routes, staff  # noqa: E402,F401
