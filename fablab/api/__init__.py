"""JSON API v1: bearer tokens, DESIGN.md's error format, an OpenAPI document of what exists."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

from . import machines, openapi  # noqa: E402,F401
