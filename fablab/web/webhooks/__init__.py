"""Admin pages for webhooks: register, edit, rotate the secret, ping, enable/disable, delete, delivery log."""

from flask import Blueprint

bp = Blueprint("webhooks", __name__, url_prefix="/admin/webhooks")

from . import routes  # noqa: E402,F401
