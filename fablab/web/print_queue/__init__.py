"""Print pages: "Print on…" from a design's G-code file or an own upload, "My print jobs", and each
machine's queue for stewards (reorder, cancel with a reason)."""

from flask import Blueprint

bp = Blueprint("print_queue", __name__, url_prefix="/print")

from . import routes  # noqa: E402,F401
