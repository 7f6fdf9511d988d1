"""The member list as CSV, in the import's columns, so an exported file imports back without a change.

badge_uid stays empty: the lab keeps only a keyed hash of each badge, and an empty badge_uid on import keeps
the member's badge. Qualifications for a whole machine type are listed with their last valid day (lab
time); ones for a single machine are not (the import knows machine types only). Text cells go through
csv_safe, so a name like "=HYPERLINK(...)" stays text in a spreadsheet (the import reads it back as typed).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict

from flask import current_app
from sqlalchemy import select

from ..domain import csv_safe
from ..domain import member_csv as mcsv
from ..extensions import db
from ..models import Member, Qualification


def members_csv() -> str:
    tz = current_app.config["TZ"]
    quals: dict[int, list[mcsv.QualSpec]] = defaultdict(list)
    for q in db.session.scalars(select(Qualification).where(Qualification.machine_type_id.is_not(None))):
        assert q.machine_type is not None
        day = q.expires_at.astimezone(tz).date() if q.expires_at else None
        quals[q.member_id].append(mcsv.QualSpec(q.machine_type.slug, day))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(mcsv.COLUMNS)
    for m in db.session.scalars(select(Member).where(Member.deleted_at.is_(None)).order_by(Member.member_no)):
        specs = ";".join(s.text() for s in sorted(quals.get(m.id, []), key=lambda s: s.type_slug))
        w.writerow([csv_safe.cell(m.email), csv_safe.cell(m.name), m.member_no, "", m.role, csv_safe.cell(specs)])
    # A BOM, so spreadsheets open the file as UTF-8 (the import skips it).
    return "\ufeff" + buf.getvalue()
