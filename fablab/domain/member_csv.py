"""Reading a member list from CSV: the file's shape, each cell's meaning, and every row's errors.

Pure: bytes in, rows and errors out. What a row does to the database (create, change, nothing) is decided
by `services/member_import.py`, which also checks what only the database knows (numbers and badges taken
by other members). Columns:

    email, name, member_no, badge_uid, role, qualifications

`qualifications` lists machine type slugs, each with an optional last valid day:
`laser_cutter:2027-06-30;3d_printer`. Headers are matched case-insensitively ("Member No" = member_no);
only `email` is required. The delimiter is `,`, `;` or a tab (read from the header line), a UTF-8 BOM is
skipped, and a cell the export protected against spreadsheet formulas (`'=...`) is read back unprotected.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import date

from .bounded import MAX_YEAR, MIN_YEAR

COLUMNS = ("email", "name", "member_no", "badge_uid", "role", "qualifications")
ROLES = ("member", "steward", "admin")
MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 5000
MAX_MEMBER_NO = 2_000_000_000  # an SQL INTEGER holds it on every database

_EMAIL = re.compile(r"^[^@\s,;<>\"']+@[^@\s,;<>\"']+\.[^@\s,;<>\"']+$")
_BADGE = re.compile(r"^[A-Za-z0-9:\- ]{1,64}$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class QualSpec:
    """A qualification for every machine of a type, valid through `expires` (a lab-local day) or forever."""

    type_slug: str
    expires: date | None = None

    def text(self) -> str:
        return self.type_slug + (f":{self.expires.isoformat()}" if self.expires else "")


@dataclass(frozen=True)
class RowError:
    row: int  # as a spreadsheet numbers it: the header is row 1
    column: str  # "" for the whole row
    message: str

    def text(self) -> str:
        where = f"row {self.row}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class MemberRow:
    """One member as the file describes it. None means "not given": an existing member keeps that value."""

    row: int
    email: str
    name: str | None = None
    member_no: int | None = None
    badge_uid: str | None = None
    role: str | None = None
    qualifications: tuple[QualSpec, ...] = ()


@dataclass
class ParsedFile:
    columns: tuple[str, ...] = ()
    rows: list[MemberRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    # Set when the file as a whole cannot be read (encoding, no header, unknown column...): no rows then.
    refusal: str | None = None

    def errors_of(self, row: int) -> list[RowError]:
        return [e for e in self.errors if e.row == row]


def badge_key(uid: str) -> str:
    """The same normalisation as the stored badge hash (readers print a card differently)."""
    return "".join(ch for ch in uid.upper() if ch.isalnum())


def header_key(name: str) -> str:
    return re.sub(r"[\s\-.]+", "_", name.strip().lower())


def unprotect(value: str) -> str:
    """A cell written as `'=x` by the export (csv_safe) reads back as `=x`."""
    if value.startswith("'") and value[1:].startswith(_FORMULA_START):
        return value[1:]
    return value


def decode(data: bytes) -> str:
    """The file's text, or ValueError with what the person should do."""
    if not data.strip():
        raise ValueError("The file is empty. Choose a CSV file with a header line and one member per line.")
    if len(data) > MAX_BYTES:
        raise ValueError(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB. Split it into smaller files.")
    if b"\x00" in data:
        raise ValueError("This is not a CSV text file (it contains binary data). Export or save the list as "
                         "“CSV UTF-8” and upload that.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("The file is not UTF-8 text. In your spreadsheet, save it as “CSV UTF-8” "
                         "and upload it again.") from None


def sniff_delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def parse(data: bytes, known_types: Collection[str]) -> ParsedFile:
    """Reads the whole file; every problem is reported (the file's, or each row's with its column)."""
    try:
        text = decode(data)
    except ValueError as exc:
        return ParsedFile(refusal=str(exc))
    first = next((line for line in text.splitlines() if line.strip()), "")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(first), strict=True)
    out = ParsedFile()
    try:
        records = list(reader)
    except csv.Error as exc:
        return ParsedFile(refusal=f"This is not a readable CSV file (line {reader.line_num}: {exc}). "
                          "Check for a quote that is opened and never closed.")
    numbered = [(i + 1, rec) for i, rec in enumerate(records) if any(c.strip() for c in rec)]
    if not numbered:
        return ParsedFile(refusal="The file is empty. Choose a CSV file with a header line and one member per line.")
    header_row, header = numbered[0]
    columns = tuple(header_key(h) for h in header)
    refusal = _check_header(columns, header)
    if refusal:
        return ParsedFile(refusal=refusal)
    out.columns = columns
    if len(numbered) - 1 > MAX_ROWS:
        return ParsedFile(refusal=f"The file has {len(numbered) - 1} members; at most {MAX_ROWS} are read at once. "
                          "Split it into smaller files.")
    if len(numbered) == 1:
        return ParsedFile(columns=columns, refusal="The file has a header line but no members below it.")
    known = frozenset(known_types)
    for row_no, rec in numbered[1:]:
        if len(rec) > len(columns) and any(c.strip() for c in rec[len(columns):]):
            out.errors.append(RowError(row_no, "", f"{len(rec)} cells but the header has {len(columns)} columns; "
                                       "quote cells that contain the delimiter."))
            continue
        cells = {col: unprotect(rec[i].strip()) if i < len(rec) else "" for i, col in enumerate(columns)}
        row, errors = _row(row_no, cells, known)
        out.errors.extend(errors)
        if row is not None:
            out.rows.append(row)
    out.errors.extend(_duplicates(out.rows))
    bad = {e.row for e in out.errors}
    out.rows = [r for r in out.rows if r.row not in bad]
    out.errors.sort(key=lambda e: (e.row, COLUMNS.index(e.column) if e.column in COLUMNS else -1))
    return out


def _check_header(columns: tuple[str, ...], raw: list[str]) -> str | None:
    expected = ", ".join(COLUMNS)
    unknown = [raw[i].strip() or f"(empty, column {i + 1})" for i, c in enumerate(columns) if c not in COLUMNS]
    if unknown:
        return (f"Unknown column(s): {', '.join(unknown)}. The first line must name the columns, from: {expected} "
                "(only email is required).")
    seen: set[str] = set()
    for c in columns:
        if c in seen:
            return f"The column {c} appears twice in the header line."
        seen.add(c)
    if "email" not in columns:
        return f"The header line has no email column. The columns are: {expected} (only email is required)."
    return None


def _row(row_no: int, cells: dict[str, str], known: frozenset[str]) -> tuple[MemberRow | None, list[RowError]]:
    errors: list[RowError] = []

    def err(column: str, message: str) -> None:
        errors.append(RowError(row_no, column, message))

    email = cells.get("email", "").lower()
    if not email:
        err("email", "The email is missing; every row needs one.")
    elif len(email) > 254 or not _EMAIL.match(email):
        err("email", f"“{email[:60]}” is not an email address.")
    name = cells.get("name", "") or None
    if name is not None and (len(name) > 120 or not name.isprintable()):
        err("name", "A name is at most 120 printable characters.")
    member_no = None
    raw_no = cells.get("member_no", "")
    if raw_no:
        if not raw_no.isdigit() or not 0 < int(raw_no) <= MAX_MEMBER_NO:
            err("member_no", f"“{raw_no[:20]}” is not a member number (a whole number from 1 to {MAX_MEMBER_NO}).")
        else:
            member_no = int(raw_no)
    badge = cells.get("badge_uid", "") or None
    if badge is not None and (not _BADGE.match(badge) or not badge_key(badge)):
        err("badge_uid", "A badge UID is 1 to 64 letters and digits (separators : - and spaces are ignored).")
    role = cells.get("role", "").lower() or None
    if role is not None and role not in ROLES:
        err("role", f"“{role[:20]}” is not a role; use member, steward or admin.")
    quals = _qualifications(cells.get("qualifications", ""), known, err)
    if errors:
        return None, errors
    return MemberRow(row_no, email, name, member_no, badge, role, quals), []


def _qualifications(raw: str, known: frozenset[str], err: Callable[[str, str], None]) -> tuple[QualSpec, ...]:
    specs: list[QualSpec] = []
    seen: set[str] = set()
    for item in (p.strip() for p in re.split(r"[;,|]", raw)):
        if not item:
            continue
        slug, _, day = (s.strip() for s in item.partition(":"))
        slug = slug.lower()
        if not _SLUG.match(slug) or slug not in known:
            names = ", ".join(sorted(known)) or "none yet"
            err("qualifications", f"“{slug[:40]}” is not a machine type of this lab (they are: {names}).")
            continue
        if slug in seen:
            err("qualifications", f"{slug} is listed twice.")
            continue
        seen.add(slug)
        expires = None
        if day:
            try:
                expires = date.fromisoformat(day)
            except ValueError:
                err("qualifications", f"“{day[:20]}” after {slug}: is not a date like 2027-06-30.")
                continue
            if not MIN_YEAR <= expires.year <= MAX_YEAR:
                err("qualifications", f"The date after {slug}: must lie between {MIN_YEAR} and {MAX_YEAR}.")
                continue
        specs.append(QualSpec(slug, expires))
    return tuple(specs)


def _duplicates(rows: list[MemberRow]) -> list[RowError]:
    """A second row for the same email, member number or badge: both would write the same member."""
    errors: list[RowError] = []
    firsts: dict[tuple[str, str], int] = {}
    for r in rows:
        keys = [("email", r.email)]
        if r.member_no is not None:
            keys.append(("member_no", str(r.member_no)))
        if r.badge_uid:
            keys.append(("badge_uid", badge_key(r.badge_uid)))
        for column, value in keys:
            first = firsts.setdefault((column, value), r.row)
            if first != r.row:
                shown = "this badge" if column == "badge_uid" else value
                errors.append(RowError(r.row, column, f"{shown} is already in row {first} of this file."))
    return errors
