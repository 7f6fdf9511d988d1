"""The MIME writer: what it writes parses back, with the standard library's parser, to the same texts."""

from __future__ import annotations

import email
import email.policy

from fablab.services.mime_write import header_value, notice_mail


def _parse(data: bytes) -> email.message.EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, email.message.EmailMessage)
    return msg


def test_non_ascii_long_lines_and_an_invitation_round_trip():
    text = "Grüße aus dem Fab Lab: " + "é" * 200 + "\n\nZweiter Absatz = mit Gleichheitszeichen.\n"
    html = "<p>Grüße</p>" + "<b>x</b>" * 50
    ics = b"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n"
    headers = [("From", "lab@example.org"), ("To", "ada@example.org"),
               ("Subject", header_value("Gebucht: Lasercutter Ü-Raum, " + "ö" * 60)), ("Message-ID", "<x@y>")]
    data = notice_mail(headers, text, html, ("REQUEST", ics))
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    assert data.isascii() and b"\n" not in data.replace(b"\r\n", b"")  # 7-bit, CRLF only
    msg = _parse(data)
    assert msg["Subject"] == "Gebucht: Lasercutter Ü-Raum, " + "ö" * 60
    assert msg.get_content_type() == "multipart/mixed"
    alt, attached = msg.get_payload()
    plain, rich, calendar = alt.get_payload()
    assert plain.get_content().replace("\r\n", "\n") == text
    assert rich.get_content().strip() == html
    assert calendar.get_content_type() == "text/calendar" and calendar.get_param("method") == "REQUEST"
    assert attached.get_filename() == "invite.ics" and attached.get_payload(decode=True) == ics


def test_without_an_invitation_it_is_one_alternative():
    msg = _parse(notice_mail([("Subject", "Hi")], "plain text", "<p>html</p>"))
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.get_payload()] == ["text/plain", "text/html"]
    assert msg.get_payload()[0].get_content_charset() == "us-ascii"
