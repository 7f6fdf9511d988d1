from flask import Blueprint

bp = Blueprint("scheduling", __name__)

from . import routes  # noqa: E402,F401
