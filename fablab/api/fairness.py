"""The fairness review as JSON: the same figures as the page, under the same privacy rule."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from datetime import date, datetime, timedelta
from typing import Any

from flask import current_app, request

from ..models.types import utcnow
from ..services import fairness as svc
from . import bp
from .common import api_member, fail, iso, ok, to_datetime, token_required
from .openapi import document, q

document("/fairness", "GET", "The fairness review: per member use and satisfaction, Gini, Lorenz curve, Jain's "
         "index, utilisation, unmet demand by hour of week, replay estimates, lotteries and weekly trends. Admins see "
         "names; members only when the lab made the review public, by pseudonym unless it shows names.",
         params=[q("machine", "only this machine (slug)"), q("type", "only machines of this type (slug)"),
                 q("from", "start (ISO 8601; default 4 weeks before `to`)", fmt="date-time"),
                 q("to", "end (ISO 8601; default now)", fmt="date-time")],
         responses={"200": "OK", "400": "Bad input", "403": "The review is not public in this lab",
                    "404": "Unknown machine or type"})


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return round(value, 4)
    return value


def review_json(review: svc.Review) -> dict[str, Any]:
    out = _plain(review)
    query = out.pop("query")
    out["period"] = {"from": query["start"], "to": out.pop("end"), "machine": query["machine"],
                     "type": query["machine_type"], "late_cancel_hours": query["late_cancel_hours"]}
    heat = out.pop("heat")
    out["heatmap"] = {"weekdays": list(svc.WEEKDAY_NAMES), "hours": list(range(24)), **heat}
    out["statements"] = review.statements
    return out


@bp.get("/fairness")
@token_required()
def fairness() -> Any:
    cfg = current_app.config
    viewer = svc.viewer_for(api_member(), cfg["FABLAB_REVIEW_PUBLIC"], cfg["FABLAB_REVIEW_SHOW_NAMES"])
    if viewer is None:
        fail(403, "forbidden", "The fairness review is open to admins only in this lab.")
    now = utcnow()
    end = to_datetime("to", request.args["to"]) if request.args.get("to") else now
    start = to_datetime("from", request.args["from"]) if request.args.get("from") else \
        end - timedelta(days=svc.DEFAULT_DAYS)
    if end <= start:
        fail(400, "bad_period", "'to' must come after 'from'.")
    query = svc.ReviewQuery(start, end, request.args.get("machine") or None, request.args.get("type") or None)
    try:
        review = svc.build_review(query, viewer, now)
    except svc.UnknownScope as exc:
        fail(404, "not_found", f"No machine or machine type called {exc.args[0]!r}.")
    return ok(review_json(review))
