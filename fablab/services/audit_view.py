"""Reading the audit log for the admin page: filters (action, actor, target, a range of lab-local days),
pages newest first, and the same filtered list as CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from sqlalchemy import Select, func, select

from ..domain import audit_actions as actions
from ..domain import bounded, csv_safe
from ..extensions import db
from ..models.accounts import AuditEntry

PER_PAGE = 50
MAX_CSV_ROWS = 100_000
_TEXT_MAX = 100


@dataclass(frozen=True)
class AuditFilter:
    action: str = ""
    actor: str = ""
    target: str = ""
    start: date | None = None  # first lab-local day shown
    end: date | None = None  # last lab-local day shown (inclusive)

    def args(self) -> dict[str, str]:
        """The filter as query arguments (for page links and the CSV link)."""
        out = {"action": self.action, "actor": self.actor, "target": self.target,
               "from": self.start.isoformat() if self.start else "", "to": self.end.isoformat() if self.end else ""}
        return {k: v for k, v in out.items() if v}


def parse_filter(args: Mapping[str, str]) -> tuple[AuditFilter, list[str]]:
    """The filter from a query string, and a sentence for each value that was left out."""
    problems: list[str] = []
    action = (args.get("action") or "").strip()
    if action and action not in actions.LABELS:
        problems.append(f"“{action[:40]}” is not an action this log records; showing all actions.")
        action = ""

    def text(name: str) -> str:
        raw = (args.get(name) or "").strip()
        if len(raw) > _TEXT_MAX or not bounded.is_clean_text(raw):
            problems.append(f"The {name} filter is at most {_TEXT_MAX} plain characters; it was left out.")
            return ""
        return raw

    def day(name: str) -> date | None:
        raw = (args.get(name) or "").strip()
        if not raw:
            return None
        try:
            return bounded.parse_date(raw, name)
        except bounded.InputError as exc:
            problems.append(f"{exc.message} It was left out.")
            return None

    f = AuditFilter(action, text("actor"), text("target"), day("from"), day("to"))
    if f.start and f.end and f.start > f.end:
        problems.append("The first day is after the last day; showing both days' range swapped.")
        f = AuditFilter(f.action, f.actor, f.target, f.end, f.start)
    return f, problems


def day_start(day: date, tz: tzinfo) -> datetime:
    """Midnight at the start of a lab-local day, in UTC (a DST day is 23 or 25 hours long)."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _query(f: AuditFilter, tz: tzinfo) -> Select[AuditEntry]:
    stmt = select(AuditEntry)
    if f.action:
        stmt = stmt.where(AuditEntry.action == f.action)
    if f.actor:
        stmt = stmt.where(AuditEntry.actor_label.ilike(_like(f.actor), escape="\\"))
    if f.target:
        stmt = stmt.where(AuditEntry.target_label.ilike(_like(f.target), escape="\\"))
    if f.start:
        stmt = stmt.where(AuditEntry.at >= day_start(f.start, tz))
    if f.end:
        stmt = stmt.where(AuditEntry.at < day_start(f.end + timedelta(days=1), tz))
    return stmt


def page(f: AuditFilter, tz: tzinfo, number: int) -> tuple[list[AuditEntry], int]:
    """One page (1-based) of the filtered entries, newest first, and how many there are in all."""
    stmt = _query(f, tz)
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = db.session.scalars(stmt.order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
                              .offset((number - 1) * PER_PAGE).limit(PER_PAGE))
    return list(rows), total


def detail_of(entry: AuditEntry) -> dict[str, object]:
    try:
        value = json.loads(entry.detail or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def detail_text(entry: AuditEntry) -> str:
    """The detail as one readable line: `role: member → steward; reason: …`."""
    parts = []
    for key, value in detail_of(entry).items():
        if isinstance(value, dict) and set(value) <= {"from", "to"}:
            parts.append(f"{key}: {_show(value.get('from'))} → {_show(value.get('to'))}")
        elif isinstance(value, dict):
            inner = "; ".join(f"{k}: {_show(v.get('from'))} → {_show(v.get('to'))}" if isinstance(v, dict)
                              else f"{k}: {_show(v)}" for k, v in value.items())
            parts.append(f"{key}: {inner}" if inner else f"{key}: –")
        else:
            parts.append(f"{key}: {_show(value)}")
    return "; ".join(parts)


def _show(value: object) -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, list):
        return ", ".join(_show(v) for v in value)
    return str(value)


def to_csv(f: AuditFilter, tz: tzinfo) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["at (lab time)", "at (UTC)", "actor", "action", "action label", "target type", "target", "detail"])
    stmt = _query(f, tz).order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(MAX_CSV_ROWS)
    for e in db.session.scalars(stmt):
        w.writerow([e.at.astimezone(tz).isoformat(timespec="seconds"),
                    e.at.astimezone(UTC).isoformat(timespec="seconds"),
                    csv_safe.cell(e.actor_label), e.action, actions.label(e.action), e.target_type,
                    csv_safe.cell(e.target_label), csv_safe.cell(detail_text(e))])
    return "\ufeff" + buf.getvalue()
