from flask import Blueprint

bp = Blueprint("designs", __name__)

from . import routes  # noqa: E402,F401
