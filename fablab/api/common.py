"""What every API route shares: token auth, errors, time parsing, serialisers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any, NoReturn, TypeVar

from flask import current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from ..database import write_transaction
from ..domain import bounded
from ..domain.bounded import InputError
from ..domain.input_schema import Body, Field, convert_all
from ..models import Machine, Member, Role
from ..models.types import utcnow
from ..services import members as member_service
from . import bp

F = TypeVar("F", bound=Callable[..., Any])


class ApiError(HTTPException):
    code: int  # always set (HTTPException's is int | None)

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = status
        self.error_code = code
        self.message = message
        self.extra = extra

    def get_response(self, environ: Any = None, scope: Any = None) -> Any:  # noqa: ARG002
        body: dict[str, Any] = {"code": self.error_code, "message": self.message}
        body.update(self.extra)
        resp = jsonify({"error": body})
        resp.status_code = self.code
        if self.code == 401:
            resp.headers["WWW-Authenticate"] = 'Bearer realm="fablab"'
        return resp


def fail(status: int, code: str, message: str, **extra: Any) -> NoReturn:
    raise ApiError(status, code, message, **extra)


def token_required(role: Role = Role.MEMBER) -> Callable[[F], F]:
    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                fail(401, "unauthorized", "Send an API token: 'Authorization: Bearer <token>'.")
            found = member_service.member_by_api_token(token.strip())
            if found is None:
                fail(401, "unauthorized", "The API token is unknown or revoked.")
            member, row = found
            now = utcnow()
            refusal = member_service.token_refusal(row, request.method, now)
            if refusal is not None:
                fail(*refusal)
            # Record use at most once a minute: a write per read request would serialise SQLite.
            if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
                with write_transaction():  # its own short write, also inside GET requests
                    row.last_used_at = now
            g.api_member = member
            if not member.has_role(role):
                fail(403, "forbidden", f"This needs the {role.value} role.")
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


def api_member() -> Member:
    member: Member = g.api_member
    return member


def _local() -> Any:
    return current_app.config["TZ"]


@bp.errorhandler(InputError)
def _input_error(err: InputError) -> Any:
    """A refused value anywhere in an API route: 400 in the API's format, naming the field."""
    extra = {"field": err.field} if err.field else {}
    return ApiError(400, err.code, err.message, **extra).get_response()


def json_body(schema: Body) -> dict[str, Any]:
    """The request's JSON object, checked against `schema` (the same object documents it)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        fail(400, "bad_json", f"Send a JSON object with {', '.join(f.name for f in schema.fields)}.")
    return schema.validate(body, _local())


def query(*fields: Field) -> dict[str, Any]:
    """The named query arguments, converted and bounded; absent (or empty) ones are left out."""
    return convert_all(fields, request.args, _local())


def parse_time(name: str, default: datetime | None = None) -> datetime:
    """A time from the query string (GET) or the JSON body; `default` when it is absent."""
    raw = request.args.get(name) if request.method == "GET" else None
    if raw is None and request.method != "GET":
        body = request.get_json(silent=True)
        raw = body.get(name) if isinstance(body, dict) else None
    if raw is None or raw == "":
        if default is not None:
            return default
        fail(400, "missing_field", f"'{name}' is required (ISO 8601 time with offset).", field=name)
    return to_datetime(name, raw)


def to_datetime(name: str, raw: Any) -> datetime:
    return bounded.parse_datetime(raw, name, _local())


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(current_app.config["TZ"]).isoformat()


def machine_json(machine: Machine) -> dict[str, Any]:
    return {
        "slug": machine.slug,
        "name": machine.name,
        "type": machine.machine_type.slug,
        "type_name": machine.machine_type.name,
        "location": machine.location,
        "description": machine.description,
        "status": machine.status,
        "qualification_scope": machine.qualification_scope,
        "live": {
            "state": machine.live_state or "unknown",
            "progress": machine.live_progress,
            "job": machine.live_job,
            "since": iso(machine.live_since),
            "updated_at": iso(machine.live_updated_at),
        },
    }


def ok(payload: Any, status: int = 200) -> Any:
    return jsonify(payload), status

