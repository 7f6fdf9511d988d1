"""Admin pages about mail: the outbox (counts, failed mails with retry and discard) and, in the demo, the
mails its SMTP sink received."""

from flask import Blueprint

bp = Blueprint("mail_admin", __name__, url_prefix="/admin/mail")

from . import routes  # noqa: E402,F401
