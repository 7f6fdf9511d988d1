from flask import Blueprint

bp = Blueprint("machines", __name__)

from . import routes  # noqa: E402,F401
