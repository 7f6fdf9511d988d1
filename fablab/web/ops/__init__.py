"""Operations endpoints: /healthz, /readyz, /metrics, and the request hooks behind the metrics and the
request id. `init_ops(app)` is called by create_app."""

from flask import Blueprint

bp = Blueprint("ops", __name__)

from . import routes  # noqa: E402,F401
from .hooks import init_ops  # noqa: E402,F401
