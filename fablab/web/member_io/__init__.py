from flask import Blueprint

bp = Blueprint("member_io", __name__)

from . import routes  # noqa: E402,F401
