"""A member's own data: download it all, delete the account; staff see and confirm pending deletions and
admins delete a member from the member page."""

from flask import Blueprint

bp = Blueprint("privacy", __name__, url_prefix="/privacy")

from . import routes  # noqa: E402,F401
