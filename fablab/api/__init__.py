"""JSON API v1: bearer tokens, DESIGN.md's error format, an OpenAPI document of what exists."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

from . import bookings, machines, openapi  # noqa: E402,F401
from . import scheduling  # noqa: E402,F401
from . import designs  # noqa: E402,F401
from . import fairness  # noqa: E402,F401
from . import usage  # noqa: E402,F401
