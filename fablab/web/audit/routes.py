"""The audit log of staff actions, for admins: filtered pages and the same list as CSV."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, render_template, request

from ...auth import admin_required
from ...domain import audit_actions as actions
from ...models.types import utcnow
from ...services import audit_view as view
from . import bp


def _page_number() -> int:
    raw = request.args.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < int(raw) <= 100_000 else 1


@bp.get("/admin/audit")
@admin_required
def index() -> Any:
    f, problems = view.parse_filter(request.args)
    number = _page_number()
    rows, total = view.page(f, current_app.config["TZ"], number)
    pages = max(1, -(-total // view.PER_PAGE))
    return render_template("audit/index.html", rows=rows, total=total, page=number, pages=pages, f=f,
                           args=f.args(), problems=problems, labels=actions.LABELS, label=actions.label,
                           detail_text=view.detail_text), 422 if problems else 200


@bp.get("/admin/audit.csv")
@admin_required
def download() -> Any:
    f, problems = view.parse_filter(request.args)
    if problems:
        return render_template("audit/index.html", rows=[], total=0, page=1, pages=1, f=f, args=f.args(),
                               problems=problems, labels=actions.LABELS, label=actions.label,
                               detail_text=view.detail_text), 422
    name = f"audit-{utcnow():%Y-%m-%d}.csv"
    return Response(view.to_csv(f, current_app.config["TZ"]), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})
