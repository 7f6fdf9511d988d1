"""The fairness review: the page (htmx partial refresh on filter change), the printable report and the
CSV export of every table. Who sees what is `fairness.viewer_for`'s rule."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Any

from flask import Response, abort, current_app, g, render_template, request
from htmx_flask import request as hx_request
from markupsafe import Markup

from ...auth import login_required
from ...domain import csv_safe
from ...domain import policy as pol
from ...models.types import utcnow
from ...services import fairness as svc
from .. import charts, formatting
from . import bp
from .forms import ReviewFilter

CHARTS = ("lorenz", "usage", "heat", "weeks")


def _viewer() -> svc.Viewer:
    cfg = current_app.config
    viewer = svc.viewer_for(g.member, cfg["FABLAB_REVIEW_PUBLIC"], cfg["FABLAB_REVIEW_SHOW_NAMES"])
    if viewer is None:
        abort(403, "The fairness review is open to admins only in this lab.")
    return viewer


def _filter() -> tuple[ReviewFilter, svc.ReviewQuery]:
    machines, types = svc.scope_choices()
    form = ReviewFilter(request.args)
    form.machine.choices = [("", "All machines")] + machines
    form.type.choices = [("", "All types")] + types
    now = utcnow()
    tz = current_app.config["TZ"]
    if not form.validate():  # show the errors, and the default period meanwhile
        return form, svc.ReviewQuery.default(now, None if form.machine.errors else form.machine.data,
                                             None if form.type.errors else form.type.data)
    default = svc.ReviewQuery.default(now)
    start = pol.local_midnight(form.start.data, tz) if form.start.data else default.start
    end = pol.local_midnight(form.end.data + timedelta(days=1), tz) if form.end.data else default.end
    if not form.start.data and form.end.data:
        start = end - timedelta(days=svc.DEFAULT_DAYS)
    return form, svc.ReviewQuery(start, end, form.machine.data or None, form.type.data or None)


def _review() -> tuple[ReviewFilter, svc.Review]:
    viewer = _viewer()
    form, query = _filter()
    try:
        review = svc.build_review(query, viewer, utcnow())
    except svc.UnknownScope:
        abort(404, "No such machine or machine type.")
    return form, review


def _context(form: ReviewFilter, review: svc.Review) -> dict[str, Any]:
    try:
        svgs = {k: Markup(v) for k, v in charts.review_charts(review).items()}  # built escaped in charts.py
    except (ValueError, OverflowError, ZeroDivisionError):
        # A stored figure that is no finite number (a machine's report) cannot be drawn; the tables show it.
        svgs = dict.fromkeys(CHARTS, Markup('<p class="meta">This chart cannot be drawn from the stored figures.</p>'))
    return {"form": form, "review": review, "charts": svgs, "tables": _on_screen(svc.tables(review)),
            "weekday_names": svc.WEEKDAY_NAMES, "args": request.args.to_dict(), "export_names": svc.TABLES}


# Columns that hold a fraction: a person reads "47 %", the CSV keeps 0.47.
PERCENT_COLUMNS = {"satisfaction", "utilisation", "share", "evening share", "share of members", "share of usage",
                   "demand/capacity", "no-show rate", "late cancellation rate"}


def _on_screen(tables: dict[str, tuple[list[str], list[list[Any]]]]) -> dict[str, tuple[list[str], list[list[Any]]]]:
    """The export's tables as a person reads them: fractions as percentages, days as "Mon 05 Oct 2026"."""
    out = {}
    for name, (header, rows) in tables.items():
        kinds = ["pct" if h in PERCENT_COLUMNS else "day" if h == "week from" else "" for h in header]
        out[name] = (header, [[_shown(v, k) for v, k in zip(row, kinds, strict=True)] for row in rows])
    return out


def _shown(value: Any, kind: str) -> Any:
    if kind == "pct" and isinstance(value, int | float) and not isinstance(value, bool):
        return formatting.pct(value)
    if kind == "day" and isinstance(value, str):
        try:
            return date.fromisoformat(value).strftime("%a %d %b %Y")
        except ValueError:
            return value
    return value


@bp.get("/fairness")
@login_required
def review() -> Any:
    form, rev = _review()
    ctx = _context(form, rev)
    if hx_request.htmx:
        return render_template("fairness/_review.html", **ctx)
    return render_template("fairness/review.html", **ctx)


@bp.get("/fairness/report")
@login_required
def report() -> Any:
    form, rev = _review()
    return render_template("fairness/report.html", **_context(form, rev))


@bp.get("/fairness/export/<table>.csv")
@login_required
def export(table: str) -> Any:
    if table not in svc.TABLES:
        abort(404, f"No table called {table!r}; there are: {', '.join(svc.TABLES)}.")
    _, rev = _review()
    header, rows = svc.tables(rev)[table]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    for row in rows:
        writer.writerow([csv_safe.cell(v) for v in row])
    tz = current_app.config["TZ"]
    first = rev.query.start.astimezone(tz).date()
    last = (rev.end - timedelta(seconds=1)).astimezone(tz).date()
    name = f"fairness-{table}-{first.isoformat()}-{last.isoformat()}.csv"
    return Response(buf.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
