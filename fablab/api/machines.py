from __future__ import annotations

from typing import Any

from ..services import machines as machine_service
from . import bp
from .common import fail, machine_json, ok, token_required


@bp.get("/machines")
@token_required()
def list_machines() -> Any:
    return ok({"machines": [machine_json(m) for m in machine_service.list_machines()]})


@bp.get("/machines/<slug>")
@token_required()
def get_machine(slug: str) -> Any:
    try:
        machine = machine_service.machine_by_slug(slug)
    except machine_service.NotFound:
        fail(404, "not_found", f"No machine called {slug!r}.")
    return ok(machine_json(machine))
