"""The web blueprints, in registration order. A feature adds its package with one appended line."""

BLUEPRINTS: list[str] = [
    "fablab.web.auth",
    "fablab.web.machines",
    "fablab.web.admin",
]
BLUEPRINTS.append("fablab.web.bookings")
BLUEPRINTS.append("fablab.web.scheduling")
BLUEPRINTS.append("fablab.web.designs")
BLUEPRINTS.append("fablab.web.kiosk")
BLUEPRINTS.append("fablab.web.fairness")
BLUEPRINTS.append("fablab.web.usage")
BLUEPRINTS.append("fablab.web.planner")
BLUEPRINTS.append("fablab.web.notices")
BLUEPRINTS.append("fablab.web.webhooks")
BLUEPRINTS.append("fablab.web.mail_admin")
BLUEPRINTS.append("fablab.web.inductions")
BLUEPRINTS.append("fablab.web.privacy")
BLUEPRINTS.append("fablab.web.sso")
BLUEPRINTS.append("fablab.web.join")
BLUEPRINTS.append("fablab.web.two_factor")
BLUEPRINTS.append("fablab.web.member_io")
BLUEPRINTS.append("fablab.web.audit")
BLUEPRINTS.append("fablab.web.print_queue")
