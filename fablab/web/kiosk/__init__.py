from flask import Blueprint

bp = Blueprint("kiosk", __name__, url_prefix="/kiosk")

from . import inductions, print_start, routes  # noqa: E402,F401
