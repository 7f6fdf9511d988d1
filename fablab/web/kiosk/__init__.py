from flask import Blueprint

bp = Blueprint("kiosk", __name__, url_prefix="/kiosk")

from . import inductions, routes  # noqa: E402,F401
