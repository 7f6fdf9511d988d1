"""FABLAB_SMTP_URL and the connection: plain, STARTTLS and implicit TLS against aiosmtpd with a self-signed
certificate made in the test, login with the right and the wrong password (which never shows anywhere)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.smtp import AuthResult
from sqlalchemy import select

from fablab.extensions import db
from fablab.models.notifications import OutboxMail
from fablab.services import notify
from fablab.services.mail_delivery import deliver_due
from fablab.services.mail_transport import SmtpSettings, parse_smtp_url
from tests.notify.test_mail_build import NOW
from tests.support.smtp import SmtpSink, self_signed_cert, server_tls_context

SECRET = "s3cr3t:p@ss/word"
# aiosmtpd warns about AUTH without STARTTLS, not knowing that the implicit-TLS server is TLS throughout.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


def test_urls_schemes_default_ports_and_quoted_credentials():
    assert parse_smtp_url("") is None and parse_smtp_url("  ") is None
    plain = parse_smtp_url("smtp://relay.lan")
    assert (plain.security, plain.host, plain.port, plain.username, plain.verify) == ("plain", "relay.lan", 25, "",
                                                                                      True)
    s = parse_smtp_url("smtp+starttls://lab%40example.org:s3cr3t%3Ap%40ss%2Fword@mail.example.org")
    assert (s.security, s.port, s.username, s.password) == ("starttls", 587, "lab@example.org", SECRET)
    assert SECRET not in repr(s) and SECRET not in s.describe()
    t = parse_smtp_url("smtps://u:p@mail.example.org:2465?verify=0&timeout=5")
    assert (t.security, t.port, t.verify, t.timeout) == ("tls", 2465, False, 5.0)


@pytest.mark.parametrize("url", [
    "http://u:hunter22@mail.example.org", "smtp://u:hunter22@", "smtp://u:hunter22@host:port",
    "smtp://u:hunter22@host/path", "smtp://u:hunter22@host?verify=maybe", "smtp://u:hunter22@host?tls=1",
    "smtp://:hunter22@host", "smtp://u:hunter22@host?timeout=0", "smtp://u:hunter22@host:99999",
])
def test_a_bad_url_names_the_setting_and_never_the_password(url):
    with pytest.raises(ValueError) as err:
        parse_smtp_url(url)
    assert str(err.value).startswith("FABLAB_SMTP_URL: ") and "hunter22" not in str(err.value)


def test_notify_refuses_to_start_with_a_bad_url(app, tmp_path: Path):
    env = {"FABLAB_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "FABLAB_SECRET_KEY": "k" * 32,
           "FABLAB_SMTP_URL": "smtq://u:hunter22@mail", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "fablab.cli", "notify", "--once"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode != 0
    assert "FABLAB_SMTP_URL: unknown scheme 'smtq'" in out.stderr and "hunter22" not in out.stderr + out.stdout


@pytest.fixture(scope="module")
def cert(tmp_path_factory) -> tuple[Path, Path]:
    return self_signed_cert(tmp_path_factory.mktemp("tls"))


def _authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = auth_data.login == b"lab@example.org" and auth_data.password == SECRET.encode()
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def tls_sink(request, cert) -> Iterator[SmtpSink]:
    """An SMTP server speaking STARTTLS (param "starttls") or implicit TLS ("tls"), login required."""
    ctx = server_tls_context(*cert)
    common = {"authenticator": _authenticator, "auth_required": True}
    if request.param == "starttls":
        sink = SmtpSink(scheme="smtp+starttls", tls_context=ctx, require_starttls=True, **common)
    else:
        # aiosmtpd counts only STARTTLS as TLS for AUTH; this connection is TLS from its first byte.
        sink = SmtpSink(scheme="smtps", ssl_context=ctx, server_hostname="127.0.0.1", auth_require_tls=False,
                        **common)
    sink.start()
    yield sink
    sink.stop()


def _url(sink: SmtpSink, password: str, query: str) -> str:
    from urllib.parse import quote

    return f"{sink.scheme}://{quote('lab@example.org', safe='')}:{quote(password, safe='')}@127.0.0.1:{sink.port}" \
           f"?{query}"


def _send_one(app, monkeypatch, make_member, url: str) -> OutboxMail:
    monkeypatch.setitem(app.config, "FABLAB_SMTP_URL", url)
    notify.notify(make_member(), "booking_confirmed", {"machine": "Laser"}, now=NOW)
    db.session.commit()
    deliver_due(NOW)
    db.session.expire_all()
    return db.session.scalars(select(OutboxMail)).one()


@pytest.mark.parametrize("tls_sink", ["starttls", "tls"], indirect=True)
def test_tls_with_the_lab_ca_and_login(app, tls_sink, cert, make_member, monkeypatch):
    mail = _send_one(app, monkeypatch, make_member, _url(tls_sink, SECRET, f"cafile={cert[0]}"))
    assert mail.status == "sent", mail.last_error
    assert [m["Message-ID"] for m in tls_sink.messages] == [mail.message_id]


@pytest.mark.parametrize("tls_sink", ["starttls", "tls"], indirect=True)
def test_an_unknown_certificate_is_refused_unless_verify_is_off(app, tls_sink, make_member, monkeypatch):
    mail = _send_one(app, monkeypatch, make_member, _url(tls_sink, SECRET, "timeout=5"))
    assert mail.status == "pending" and mail.attempts == 1 and "CERTIFICATE_VERIFY_FAILED" in mail.last_error
    assert tls_sink.messages == []
    monkeypatch.setitem(app.config, "FABLAB_SMTP_URL", _url(tls_sink, SECRET, "verify=0"))
    assert deliver_due(mail.next_attempt_at).sent == 1
    assert len(tls_sink.messages) == 1


@pytest.mark.parametrize("tls_sink", ["starttls"], indirect=True)
def test_a_wrong_password_keeps_the_mail_and_never_records_the_password(app, tls_sink, cert, make_member,
                                                                        monkeypatch, caplog):
    wrong = "wrong-hunter22"
    mail = _send_one(app, monkeypatch, make_member, _url(tls_sink, wrong, f"cafile={cert[0]}"))
    assert mail.status == "pending" and mail.attempts == 1
    assert mail.last_error.startswith("login refused for lab@example.org: 535")
    assert wrong not in mail.last_error and wrong not in caplog.text
    assert tls_sink.messages == []


def test_plain_server_refuses_starttls_the_mail_waits(app, smtp_server, make_member, monkeypatch):
    url = smtp_server.url.replace("smtp://", "smtp+starttls://")
    mail = _send_one(app, monkeypatch, make_member, url)
    assert mail.status == "pending" and "STARTTLS" in mail.last_error
    assert smtp_server.messages == []


def test_settings_ssl_context_verify_off():
    ctx = SmtpSettings("tls", "h", 465, verify=False).ssl_context()
    assert ctx.check_hostname is False
