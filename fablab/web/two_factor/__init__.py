from flask import Blueprint

bp = Blueprint("two_factor", __name__)

from . import routes  # noqa: E402,F401
