"""The web blueprints, in registration order. A feature adds its package with one appended line."""

BLUEPRINTS: list[str] = [
    "fablab.web.auth",
    "fablab.web.machines",
    "fablab.web.admin",
]
BLUEPRINTS.append("fablab.web.bookings")
