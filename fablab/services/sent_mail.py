"""What the demo's SMTP sink received: a Maildir under the instance folder (`instance/demo-mail/`), read for
the admin's "Sent mail" page. Only the demo writes there (fablab/demo/mail_sink.py); a production lab has no
such folder and the page does not exist for it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from flask import current_app

from ..domain import joining, mail_view

DIR_NAME = "demo-mail"
# A Maildir file name as Python's mailbox (and so aiosmtpd's Mailbox handler) makes them, with flags.
KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._,:=-]{0,200}$")
HEADER_BYTES = 16_384  # a page of the list reads this much of each mail
MAX_MAIL_BYTES = 20_000_000


@dataclass(frozen=True)
class SentRow:
    key: str
    received: datetime
    size: int
    summary: mail_view.MailSummary


def maildir_path() -> Path:
    return Path(current_app.instance_path) / DIR_NAME


def available() -> bool:
    """Whether this instance has the demo sink's Maildir (else there is no sent mail to show)."""
    return (maildir_path() / "new").is_dir()


def _files() -> list[os.DirEntry[str]]:
    out: list[os.DirEntry[str]] = []
    for sub in ("new", "cur"):
        try:
            out.extend(e for e in os.scandir(maildir_path() / sub) if e.is_file() and KEY.match(e.name))
        except FileNotFoundError:
            continue
    return out


def _read_head(path: str) -> bytes:
    with open(path, "rb") as f:
        head = f.read(HEADER_BYTES)
    end = head.find(b"\n\n")
    crlf = head.find(b"\r\n\r\n")
    cut = min(i for i in (end, crlf, len(head)) if i >= 0)
    return head[:cut]


def page(number: int, per_page: int = 50) -> tuple[list[SentRow], int]:
    """One page of the received mails, newest first, and how many there are."""
    entries = []
    for e in _files():
        st = e.stat()
        entries.append((st.st_mtime_ns, e.name, e.path, st.st_size))
    entries.sort(reverse=True)
    rows = []
    for mtime_ns, name, path, size in entries[(number - 1) * per_page:number * per_page]:
        try:
            head = _read_head(path)
        except OSError:  # removed since it was listed
            continue
        rows.append(SentRow(key=name, received=datetime.fromtimestamp(mtime_ns / 1e9, UTC), size=size,
                            summary=mail_view.summary(head)))
    return rows, len(entries)


def one(key: str) -> tuple[SentRow, mail_view.MailView] | None:
    """One received mail taken apart, or None when the key names no mail of the sink."""
    if not KEY.match(key):
        return None
    for sub in ("new", "cur"):
        path = maildir_path() / sub / key
        try:
            st = path.stat()
            with open(path, "rb") as f:
                raw = f.read(MAX_MAIL_BYTES)
        except (FileNotFoundError, NotADirectoryError):
            continue
        view = mail_view.parse(raw)
        # A one-time link (invitation, reset) in a mail still works for whoever reads it here: hide its token.
        view = replace(view, text=joining.redact_links(view.text), html=joining.redact_links(view.html))
        row = SentRow(key=key, received=datetime.fromtimestamp(st.st_mtime_ns / 1e9, UTC), size=st.st_size,
                      summary=mail_view.summary(raw[:HEADER_BYTES]))
        return row, view
    return None
