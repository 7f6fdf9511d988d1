"""The SMTP connection: FABLAB_SMTP_URL read once, one smtplib connection per batch, errors sorted into
temporary (try again later) and permanent (this mail can never go).

    smtp://host[:25]                      plain (a relay on the same host or network)
    smtp+starttls://user:pass@host[:587]  STARTTLS, the usual submission port
    smtps://user:pass@host[:465]          implicit TLS

User and password are URL-quoted (`p%40ss` for `p@ss`). TLS checks the server's certificate against the
system's CAs; `?cafile=/path/ca.pem` trusts one more CA (a lab's own), and `?verify=0` checks nothing: for
tests and self-signed lab servers only, never over the internet. `?timeout=SECONDS` (default 30).
The password never appears in a repr, an error or a log line.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from types import TracebackType
from urllib.parse import parse_qs, unquote, urlsplit

SETTING = "FABLAB_SMTP_URL"
SCHEMES = {"smtp": ("plain", 25), "smtp+starttls": ("starttls", 587), "smtps": ("tls", 465)}


@dataclass(frozen=True)
class SmtpSettings:
    security: str  # plain, starttls, tls
    host: str
    port: int
    username: str = ""
    password: str = field(default="", repr=False)
    verify: bool = True
    cafile: str | None = None
    timeout: float = 30.0

    def describe(self) -> str:
        """For logs: where mail goes, without the password."""
        user = f"{self.username}@" if self.username else ""
        return f"{self.security} {user}{self.host}:{self.port}"

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.cafile)
        if not self.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx


def parse_smtp_url(url: str) -> SmtpSettings | None:
    """The settings in FABLAB_SMTP_URL, None when it is empty (no mail server); ValueError naming the setting
    (never the password) when it is malformed."""
    url = url.strip()
    if not url:
        return None

    def bad(why: str) -> ValueError:
        return ValueError(f"{SETTING}: {why} (expected smtp://, smtp+starttls:// or smtps://"
                          "[user:password@]host[:port])")

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise bad("the port is not a number") from None
    if parts.scheme not in SCHEMES:
        raise bad(f"unknown scheme {parts.scheme!r}")
    security, default_port = SCHEMES[parts.scheme]
    if not parts.hostname:
        raise bad("no host")
    if parts.path not in ("", "/"):
        raise bad("a path is not allowed")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = set(query) - {"verify", "cafile", "timeout"}
    if unknown:
        raise bad(f"unknown option(s) {', '.join(sorted(unknown))}")
    verify_raw = query.get("verify", ["1"])[-1].lower()
    if verify_raw not in ("0", "1", "false", "true", "no", "yes"):
        raise bad("verify must be 0 or 1")
    try:
        timeout = float(query.get("timeout", ["30"])[-1])
    except ValueError:
        raise bad("timeout must be a number of seconds") from None
    if not 0 < timeout <= 600:
        raise bad("timeout must be between 0 and 600 seconds")
    username = unquote(parts.username or "")
    password = unquote(parts.password or "")
    if password and not username:
        raise bad("a password without a user")
    return SmtpSettings(security=security, host=parts.hostname, port=port or default_port, username=username,
                        password=password, verify=verify_raw in ("1", "true", "yes"),
                        cafile=query.get("cafile", [None])[-1] or None, timeout=timeout)


class TemporaryError(Exception):
    """Try again later: the server is away, busy (4xx), slow, or refused our login."""


class PermanentError(Exception):
    """This mail can never go as it is (5xx for the recipient or the message)."""


class ConnectionLost(TemporaryError):
    """The connection broke: this mail and the rest of the batch wait for the next attempt."""


def _reply(code: int, text: bytes | str) -> str:
    msg = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(msg.split())}"[:500]


class SmtpConnection:
    """One open connection for a batch: `with SmtpConnection(settings) as c: c.send(msg, sender, to)`."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpConnection:
        if self._smtp is None:
            self.open()
        return self

    def open(self) -> None:
        """Connect, secure and log in; TemporaryError when any of it fails (nothing is left open)."""
        s = self.settings
        try:
            if s.security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=s.ssl_context())
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            self._smtp = smtp
            smtp.ehlo()
            if s.security == "starttls":
                smtp.starttls(context=s.ssl_context())
                smtp.ehlo()
            if s.username:
                smtp.login(s.username, s.password)
        except smtplib.SMTPAuthenticationError as exc:
            self.close()
            # A wrong password is the lab's to fix; the mails wait (and fail visibly when the budget is spent).
            raise TemporaryError(f"login refused for {s.username}: {_reply(exc.smtp_code, exc.smtp_error)}") from None
        except smtplib.SMTPNotSupportedError as exc:
            self.close()
            raise TemporaryError(f"{s.describe()}: {exc}") from None
        except smtplib.SMTPResponseException as exc:
            self.close()
            raise TemporaryError(f"{s.describe()}: {_reply(exc.smtp_code, exc.smtp_error)}") from None
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            raise TemporaryError(f"cannot reach {s.describe()}: {type(exc).__name__}: {exc}") from None

    def send(self, data: bytes, sender: str, recipient: str) -> None:
        """Hand one message (its bytes, CRLF line ends) to the server; returns once it accepted it.
        TemporaryError, PermanentError, or ConnectionLost (the connection is unusable; send no more on it)."""
        if self._smtp is None:
            raise ConnectionLost("not connected")
        try:
            refused = self._smtp.sendmail(sender, [recipient], data)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            raise _by_code(code, f"recipient refused: {_reply(code, text)}") from None
        except smtplib.SMTPSenderRefused as exc:
            # The sender is the lab's setting, not this mail's fault: retry, visible in last_error.
            raise TemporaryError(f"sender refused: {_reply(exc.smtp_code, exc.smtp_error)}") from None
        except smtplib.SMTPServerDisconnected as exc:
            self._smtp = None
            raise ConnectionLost(f"connection lost: {exc}") from None
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code in (421,):  # the server is closing the connection
                self.close()
                raise ConnectionLost(_reply(exc.smtp_code, exc.smtp_error)) from None
            raise _by_code(exc.smtp_code, _reply(exc.smtp_code, exc.smtp_error)) from None
        except OSError as exc:  # a time-out too
            self.close()
            raise ConnectionLost(f"connection lost: {type(exc).__name__}: {exc}") from None
        if refused:
            code, text = next(iter(refused.values()))
            raise _by_code(code, f"recipient refused: {_reply(code, text)}")

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            try:
                smtp.close()
            except OSError:
                pass

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _by_code(code: int, text: str) -> Exception:
    return PermanentError(text) if 500 <= code < 600 else TemporaryError(text)
