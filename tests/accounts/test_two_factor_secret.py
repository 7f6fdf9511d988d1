"""The TOTP key at rest: encrypted under a key derived from SECRET_KEY, so a database copy alone cannot make
codes, and a changed SECRET_KEY fails closed (no code accepted, nothing logged but the member id) while the
recovery codes, stored as digests, still sign in."""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime

import pyotp
import pytest
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import Flask

from fablab.extensions import db
from fablab.services import two_factor as tf

T0 = datetime(2026, 12, 31, 22, 59, 50, tzinfo=UTC)  # New Year's Eve, 23:59:50 in Berlin


def _enrolled(make_member) -> tuple[object, str, list[str]]:
    member = make_member("ada@example.org", name="Ada")
    tf.begin_enrolment(member)
    secret = tf.enrolment(member).secret
    codes = tf.confirm_enrolment(member, pyotp.TOTP(secret).at(T0), T0)
    db.session.commit()
    return member, secret, codes


def test_the_key_is_sealed_with_a_key_derived_from_the_secret_key(app: Flask, make_member) -> None:
    member, secret, _ = _enrolled(make_member)
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=b"fablab:totp-secret:v1").derive(app.config["SECRET_KEY"].encode())
    assert Fernet(base64.urlsafe_b64encode(key)).decrypt(member.totp_secret.encode()).decode() == secret
    with pytest.raises(InvalidToken):  # not the secret key itself, nor any other
        Fernet(base64.urlsafe_b64encode(b"\0" * 32)).decrypt(member.totp_secret.encode())


def test_a_changed_secret_key_fails_closed_and_recovery_codes_still_work(app: Flask, make_member, caplog) -> None:
    member, secret, codes = _enrolled(make_member)
    later = datetime(2027, 1, 1, 0, 0, 30, tzinfo=UTC)
    saved = app.config["SECRET_KEY"]
    app.config["SECRET_KEY"] = "another-installation-key"
    try:
        with caplog.at_level(logging.WARNING):
            assert tf.check_second_factor(member, pyotp.TOTP(secret).at(later), later) is None
        assert f"member {member.id}" in caplog.text and secret not in caplog.text
        assert tf.check_second_factor(member, codes[0], later) == "recovery"
        assert tf.check_second_factor(member, codes[0], later) is None, "once"
    finally:
        app.config["SECRET_KEY"] = saved
    assert tf.check_second_factor(member, pyotp.TOTP(secret).at(later), later) == "totp"


def test_a_second_enrolment_start_replaces_an_unconfirmed_key(make_member) -> None:
    member = make_member("bo@example.org", name="Bo")
    tf.begin_enrolment(member)
    first = tf.enrolment(member).secret
    tf.begin_enrolment(member)
    second = tf.enrolment(member).secret
    assert first != second and len(second) == 32
    with pytest.raises(tf.TwoFactorError, match="not right"):
        tf.confirm_enrolment(member, pyotp.TOTP(first).at(T0), T0)
    tf.confirm_enrolment(member, pyotp.TOTP(second).at(T0), T0)
    with pytest.raises(tf.TwoFactorError, match="already on"):
        tf.begin_enrolment(member)
