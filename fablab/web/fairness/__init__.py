from flask import Blueprint

bp = Blueprint("fairness", __name__)

from . import routes  # noqa: E402,F401
