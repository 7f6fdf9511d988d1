"""JSON API v1: bearer tokens, DESIGN.md's error format, an OpenAPI document of what exists."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def register_routes() -> None:
    """Attach every API module's routes (and its OpenAPI paths) to `bp`; create_app calls this before it
    registers the blueprint. A new API module adds its name here.

    The imports sit in this function, not at the top, because each module imports `bp` from this
    package: imported at the top, they would run before `bp` exists (a circular import)."""
    from . import bookings, designs, fairness, machines, openapi, planner, scheduling, usage  # noqa: F401
    from . import inductions  # noqa: F401
    from . import print_jobs  # noqa: F401
