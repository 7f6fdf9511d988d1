"""The OpenAPI 3.1 document. Each API module adds its paths with `document()`; a test checks that
every /api/v1 route is described."""

from __future__ import annotations

from typing import Any

from flask import url_for

from ..auth import public
from ..domain import webhook_body
from ..domain.bounded import MAX_ID
from ..domain.input_schema import Body, Field
from . import bp
from .common import ok

PATHS: dict[str, dict[str, Any]] = {}

ERROR = {"$ref": "#/components/schemas/Error"}
JSON = "application/json"

# What any operation can answer besides its own statuses: the token (401, and 403 when its member's role or the
# token's scope does not reach), bad input (400: a malformed or out-of-range value, named in error.field), an
# unknown id (404) and a body over the upload limit (413).
_GENERIC = {"400": "Malformed or out-of-range input; error.field names it", "401": "Missing or unknown token",
            "403": "The token's member or scope may not do this", "404": "Not found",
            "413": "The body is larger than the upload limit"}


def document(path: str, method: str, summary: str, *, params: list[dict[str, Any]] | None = None,
             body: Body | dict[str, Any] | None = None, responses: dict[str, str] | None = None,
             auth: bool = True, content: dict[str, dict[str, Any]] | None = None) -> None:
    """Describe one operation. `content` replaces the JSON object of its 2xx answers (a file, CSV, iCal)."""
    op: dict[str, Any] = {"summary": summary, "responses": {}}
    codes = dict(responses or {"200": "OK"})
    generic = {"400", "404"} if params or body else set()
    if auth:
        generic |= {"401", "403"}
    if body is not None or method.upper() == "POST":
        generic |= {"400", "413"}
    for code in sorted(generic):
        codes.setdefault(code, _GENERIC[code])
    for code, text in sorted(codes.items()):
        resp: dict[str, Any] = {"description": text}
        if code.startswith(("4", "5")):
            resp["content"] = {JSON: {"schema": ERROR}}
            if code == "401":
                resp["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
        elif code != "304":
            resp["content"] = content or {JSON: {"schema": {"type": "object"}}}
        op["responses"][code] = resp
    if not auth:
        op["security"] = []
    if params:
        op["parameters"] = params
    if body is not None:
        schema = body.schema() if isinstance(body, Body) else body
        op["requestBody"] = {"required": True, "content": {JSON: {"schema": schema}}}
    PATHS.setdefault(path, {})[method.lower()] = op


def q(name: str, description: str, required: bool = False, fmt: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "maxLength": 200}
    if fmt:
        schema = {"type": "string", "format": fmt}
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}


def qf(field: Field) -> dict[str, Any]:
    """A query parameter from the Field its route parses it with."""
    return {"name": field.name, "in": "query", "required": field.required, "description": field.description,
            "schema": field.schema()}


def p(name: str, description: str, kind: str = "string") -> dict[str, Any]:
    schema: dict[str, Any] = {"type": kind}
    if kind == "integer":  # an <id:> in the URL: anything outside this range is a 404
        schema = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
    return {"name": name, "in": "path", "required": True, "description": description, "schema": schema}


document("/machines", "GET", "List machines with their live status")
document("/machines/{slug}", "GET", "One machine with its live status",
         params=[p("slug", "the machine's short name")], responses={"200": "OK", "404": "Unknown machine"})
document("/openapi.json", "GET", "This document", auth=False)


@bp.get("/openapi.json")
@public
def openapi() -> Any:
    return ok({
        "openapi": "3.1.0",
        "info": {"title": "fablab API", "version": "1",
                 "description": "Machines, bookings, usage, designs and fairness of a fab lab."},
        "servers": [{"url": url_for("api.openapi").rsplit("/", 1)[0]}],
        "security": [{"bearer": []}],
        "paths": PATHS,
        # What fablab POSTs to the URLs admins register (signed; see the README's Webhooks section).
        "webhooks": webhook_body.openapi_webhooks(),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "fablab create-token EMAIL prints one"}},
            "schemas": {"Error": {
                "type": "object", "required": ["error"],
                "properties": {"error": {"type": "object", "required": ["code", "message"],
                                         "properties": {"code": {"type": "string"},
                                                        "message": {"type": "string"},
                                                        "field": {"type": "string"}}}},
            }},
        },
    })
