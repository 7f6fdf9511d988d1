"""The OpenAPI 3.1 document. Each API module adds its paths with `document()`; a test checks that
every /api/v1 route is described."""

from __future__ import annotations

from typing import Any

from flask import url_for

from ..auth import public
from . import bp
from .common import ok

PATHS: dict[str, dict[str, Any]] = {}

ERROR = {"$ref": "#/components/schemas/Error"}


def document(path: str, method: str, summary: str, *, params: list[dict[str, Any]] | None = None,
             body: dict[str, Any] | None = None, responses: dict[str, str] | None = None,
             auth: bool = True) -> None:
    op: dict[str, Any] = {"summary": summary, "responses": {}}
    for code, text in (responses or {"200": "OK"}).items():
        resp: dict[str, Any] = {"description": text}
        if code.startswith(("4", "5")):
            resp["content"] = {"application/json": {"schema": ERROR}}
        else:
            resp["content"] = {"application/json": {"schema": {"type": "object"}}}
        op["responses"][code] = resp
    if auth:
        op["responses"].setdefault("401", {"description": "Missing or unknown token",
                                           "content": {"application/json": {"schema": ERROR}}})
    else:
        op["security"] = []
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    PATHS.setdefault(path, {})[method.lower()] = op


def q(name: str, description: str, required: bool = False, fmt: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if fmt:
        schema["format"] = fmt
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}


def p(name: str, description: str, kind: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": {"type": kind}}


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
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "fablab create-token EMAIL prints one"}},
            "schemas": {"Error": {
                "type": "object", "required": ["error"],
                "properties": {"error": {"type": "object", "required": ["code", "message"],
                                         "properties": {"code": {"type": "string"},
                                                        "message": {"type": "string"}}}},
            }},
        },
    })
