from flask import Blueprint

bp = Blueprint("usage", __name__)

from . import routes  # noqa: E402,F401
