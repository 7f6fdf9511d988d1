"""A real SMTP server for tests: aiosmtpd on a free loopback port, keeping every message it accepted.

`smtp_server` (function scope) yields a `SmtpSink`: `.url` for FABLAB_SMTP_URL, `.messages` (parsed
email.message.EmailMessage, in arrival order), `.stop()` / `.start()` to take it down and up again on the
same port (the fault tests), `.wait_for(n)` to wait until n messages arrived. `fail_next(n, code)` makes the
next n DATA commands answer with an error (a temporary 451 by default).

`.connections` counts the SMTP connections clients opened (the one-connection-per-batch tests); `delay`
makes each DATA slow (the worker-killed-mid-batch test); extra keyword arguments go to aiosmtpd's
Controller (`tls_context=` for STARTTLS, `ssl_context=` for implicit TLS, `authenticator=`), and `scheme`
is the URL's (`smtp+starttls`, `smtps`).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        if self.sink.delay:
            await asyncio.sleep(self.sink.delay)
        with self.sink.lock:
            if self.sink.failures_left > 0:
                self.sink.failures_left -= 1
                return self.sink.failure_reply
            msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
            assert isinstance(msg, EmailMessage)
            self.sink.messages.append(msg)
            self.sink.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


class _CountingController(Controller):
    def __init__(self, sink: SmtpSink, **kwargs: Any) -> None:
        self.sink = sink
        super().__init__(_Handler(sink), **kwargs)

    def factory(self) -> Any:  # one per connection
        with self.sink.lock:
            self.sink.connections += 1
        return super().factory()


class SmtpSink:
    def __init__(self, port: int | None = None, *, scheme: str = "smtp", delay: float = 0.0,
                 **controller_kwargs: Any) -> None:
        self.port = port or free_port()
        self.scheme = scheme
        self.delay = delay
        self.controller_kwargs = controller_kwargs
        self.connections = 0
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.lock = threading.Lock()
        self.failures_left = 0
        self.failure_reply = "451 Try again later"
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> None:
        before = self.connections
        self._controller = _CountingController(self, hostname="127.0.0.1", port=self.port, **self.controller_kwargs)
        self._controller.start()
        with self.lock:
            self.connections = before  # start() itself connects once to check the server is up

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def fail_next(self, n: int, reply: str = "451 Try again later") -> None:
        with self.lock:
            self.failures_left = n
            self.failure_reply = reply

    def wait_for(self, n: int, timeout: float = 10.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= n:
                    return list(self.messages)
            time.sleep(0.02)
        raise AssertionError(f"expected {n} mails, {len(self.messages)} arrived")


@pytest.fixture
def smtp_server() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


def self_signed_cert(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """(cert.pem, key.pem) for `host` (also its subjectAltName), made with the openssl command line."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={host}",
                    "-addext", f"subjectAltName=IP:{host}", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def parse_ics(data: bytes | str) -> list[dict[str, Any]]:
    """A tiny RFC 5545 reader, independent of the `icalendar` library that writes fablab's invitations:
    unfolds lines, splits NAME;PARAM=V:VALUE, nests BEGIN/END. Each component is a dict: "_name", "_children",
    and per property name a list of (value, params)."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    lines: list[str] = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        if raw[:1] in (" ", "\t") and lines:
            lines[-1] += raw[1:]  # a folded line continues the previous one
        elif raw:
            lines.append(raw)
    root: dict[str, Any] = {"_name": "ROOT", "_children": []}
    stack = [root]
    for line in lines:
        head, _, value = line.partition(":")
        name, *param_parts = head.split(";")
        params = dict(p.split("=", 1) for p in param_parts)
        name = name.upper()
        if name == "BEGIN":
            comp: dict[str, Any] = {"_name": value.upper(), "_children": []}
            stack[-1]["_children"].append(comp)
            stack.append(comp)
        elif name == "END":
            assert stack[-1]["_name"] == value.upper(), f"END:{value} closes {stack[-1]['_name']}"
            stack.pop()
        else:
            stack[-1].setdefault(name, []).append((value, params))
    assert len(stack) == 1, "unclosed component"
    return list(root["_children"])
