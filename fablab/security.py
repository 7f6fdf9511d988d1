"""Secrets at rest: passwords and PINs (argon2), tokens and badge UIDs (keyed hashes)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    if not stored:
        # Spend the same time as a real check so timing does not reveal unknown accounts.
        _hasher.hash(password)
        return False
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    """A random bearer/feed/device token (URL-safe, 256 bits)."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """Tokens are high-entropy, so a plain SHA-256 is enough to store them and look them up."""
    return hashlib.sha256(token.encode()).hexdigest()


def badge_digest(secret_key: str, uid: str) -> str:
    """Badge UIDs are short and guessable: key the hash with the installation's secret.

    UIDs are normalised (case, separators) because readers print the same card differently.
    """
    norm = "".join(ch for ch in uid.upper() if ch.isalnum())
    return hmac.new(secret_key.encode(), b"badge:" + norm.encode(), hashlib.sha256).hexdigest()
