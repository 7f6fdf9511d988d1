"""Ingest integrity: a note on stored messages (what the worker changed), a badge hint on usage sessions,
and badge UIDs in stored payloads, usage sessions and dead letters replaced by their keyed hash.

Revision ID: 0006_ingest_integrity
Revises: 0005_no_overlap
"""

import hashlib
import hmac
import json
import re

import sqlalchemy as sa
from alembic import op
from flask import current_app

revision = "0006_ingest_integrity"
down_revision = "0005_no_overlap"
branch_labels = None
depends_on = None

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _digest(secret: str, uid: str) -> str:
    # The same keyed hash as fablab.security.badge_digest (kept here: migrations do not import app code).
    norm = "".join(ch for ch in uid.upper() if ch.isalnum())
    return hmac.new(secret.encode(), b"badge:" + norm.encode(), hashlib.sha256).hexdigest()


def _last4(uid: str) -> str:
    return "".join(ch for ch in uid.upper() if ch.isalnum())[-4:]


def _redact(payload, secret: str):
    badge = payload.get("badge") if isinstance(payload, dict) else None
    if not isinstance(badge, dict) or not isinstance(badge.get("uid"), str):
        return None
    uid = badge["uid"]
    out = dict(payload)
    out["badge"] = {"tech": badge.get("tech"), "uid_hash": _digest(secret, uid), "uid_last4": _last4(uid)}
    return out


def upgrade():
    with op.batch_alter_table("mqtt_messages") as batch_op:
        batch_op.add_column(sa.Column("note", sa.String(length=255), nullable=True))
    with op.batch_alter_table("usage_sessions") as batch_op:
        batch_op.add_column(sa.Column("badge_last4", sa.String(length=4), nullable=True))

    secret = str(current_app.config["SECRET_KEY"])
    bind = op.get_bind()
    messages = sa.table("mqtt_messages", sa.column("id", sa.Integer), sa.column("kind", sa.String),
                        sa.column("payload", sa.JSON))
    for mid, payload in bind.execute(sa.select(messages.c.id, messages.c.payload)
                                     .where(messages.c.kind.in_(("event", "auth_request")))).all():
        redacted = _redact(payload, secret)
        if redacted is not None:
            bind.execute(messages.update().where(messages.c.id == mid).values(payload=redacted))

    sessions = sa.table("usage_sessions", sa.column("id", sa.Integer), sa.column("badge", sa.String),
                        sa.column("badge_last4", sa.String))
    for sid, badge in bind.execute(sa.select(sessions.c.id, sessions.c.badge)
                                   .where(sessions.c.badge.is_not(None))).all():
        if not _HEX64.match(badge):
            bind.execute(sessions.update().where(sessions.c.id == sid)
                         .values(badge=_digest(secret, badge), badge_last4=_last4(badge)))

    dead = sa.table("dead_letters", sa.column("id", sa.Integer), sa.column("payload", sa.Text))
    for did, text in bind.execute(sa.select(dead.c.id, dead.c.payload)
                                  .where(dead.c.payload.like('%"uid"%'))).all():
        try:
            redacted = _redact(json.loads(text), secret)
        except ValueError:
            continue
        if redacted is not None:
            bind.execute(dead.update().where(dead.c.id == did).values(payload=json.dumps(redacted)))


def downgrade():
    # The badge UIDs are gone for good (that is the point); only the columns are removed.
    with op.batch_alter_table("usage_sessions") as batch_op:
        batch_op.drop_column("badge_last4")
    with op.batch_alter_table("mqtt_messages") as batch_op:
        batch_op.drop_column("note")
