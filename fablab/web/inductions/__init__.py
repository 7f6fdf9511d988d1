"""Induction pages: upcoming sessions with sign-up and cancel (htmx), the trainer's page (schedule, cancel,
attendance), the requests page, and the "next induction sessions" box on a machine's page."""

from flask import Blueprint

bp = Blueprint("inductions", __name__, url_prefix="/inductions")

from . import routes  # noqa: E402,F401
