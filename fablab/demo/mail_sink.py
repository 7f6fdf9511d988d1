"""The demo's mail server: an embedded aiosmtpd SMTP server on a free loopback port that keeps every mail it
accepts in a Maildir under the instance folder (`instance/demo-mail/`), where the admin's "Sent mail" page
reads them. So the demo's `fablab notify` delivers real SMTP, and a newcomer sees what members would get.

With FABLAB_SMTP_URL set, the demo uses that server and starts no sink.
"""

from __future__ import annotations

import mailbox
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from flask import Flask

from ..services import sent_mail
from .broker import free_port


class _MaildirHandler:
    """Stores each message as it arrived (bytes untouched), with the envelope in two headers in front."""

    def __init__(self, maildir: Path) -> None:
        self.box = mailbox.Maildir(maildir, factory=None, create=True)
        for sub in ("tmp", "new", "cur"):  # an empty folder left from before is not yet a Maildir
            (maildir / sub).mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        rcpts = ", ".join(envelope.rcpt_tos)
        head = f"Return-Path: <{envelope.mail_from}>\r\nDelivered-To: {rcpts}\r\n".encode("utf-8", "replace")
        self.box.add(head + content)
        return "250 Message accepted for delivery"


class DemoMailSink:
    def __init__(self, maildir: Path, port: int | None = None) -> None:
        self.maildir = maildir
        self.port = port or free_port()
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.maildir.parent.mkdir(parents=True, exist_ok=True)
        self._controller = Controller(_MaildirHandler(self.maildir), hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


def demo_smtp(app: Flask) -> tuple[str, DemoMailSink | None]:
    """The SMTP URL the demo's processes send through: the configured FABLAB_SMTP_URL (no sink), or the URL
    of a sink started here, writing into the instance's `demo-mail/` Maildir."""
    configured = str(app.config.get("FABLAB_SMTP_URL") or "")
    if configured:
        return configured, None
    with app.app_context():
        sink = DemoMailSink(sent_mail.maildir_path())
    sink.start()
    return sink.url, sink
