from flask import Blueprint

bp = Blueprint("sso", __name__)

from . import routes  # noqa: E402,F401
