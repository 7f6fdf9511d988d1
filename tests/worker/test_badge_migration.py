"""Migration 0006 rewrites badge UIDs kept in clear by earlier versions into their keyed hash."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from flask_migrate import upgrade
from sqlalchemy import text

from fablab import create_app
from fablab.extensions import db
from fablab.models import Machine, MachineType
from fablab.models.usage import DeadLetter, MqttMessage, UsageSession
from fablab.security import badge_digest
from tests.test_migrations import _admin_sql, _fresh_config


def test_upgrade_replaces_clear_badge_uids(tmp_path) -> None:
    cfg = _fresh_config(tmp_path)
    app = create_app(cfg)
    uid = "04A1B2C3"
    with app.app_context():
        upgrade(revision="0005_no_overlap")
        now = datetime(2026, 5, 1, tzinfo=UTC)
        payload = {"v": 1, "msg_id": "a1", "ts": "2026-05-01T00:00:00Z", "src": "b", "type": "session_started",
                   "session_id": "s", "seq": 1, "badge": {"tech": "em4100", "uid": uid}}
        with db.engine.begin() as conn:  # Core inserts name only the columns that existed before 0006
            conn.execute(MachineType.__table__.insert().values(slug="t", name="T"))
            mt = conn.execute(text("SELECT id FROM machine_types")).scalar()
            conn.execute(Machine.__table__.insert().values(slug="m", name="M", type_id=mt))
            mid = conn.execute(text("SELECT id FROM machines")).scalar()
            conn.execute(MqttMessage.__table__.insert().values(msg_id="a1", topic="t", kind="event", src="b",
                                                               machine_id=mid, ts=now, received_at=now,
                                                               payload=payload))
            conn.execute(UsageSession.__table__.insert().values(key="k", machine_id=mid, start_at=now, badge=uid,
                                                                source="event", open=False))
            conn.execute(DeadLetter.__table__.insert().values(topic="t", payload=json.dumps(payload), reason="r",
                                                              received_at=now))
        upgrade(revision="head")
        digest = badge_digest(cfg["SECRET_KEY"], uid)
        with db.engine.connect() as conn:
            stored = conn.execute(text("SELECT payload FROM mqtt_messages")).scalar()
            stored = stored if isinstance(stored, dict) else json.loads(stored)
            assert stored["badge"] == {"tech": "em4100", "uid_hash": digest, "uid_last4": "B2C3"}
            assert conn.execute(text("SELECT badge, badge_last4 FROM usage_sessions")).one() == (digest, "B2C3")
            assert uid not in conn.execute(text("SELECT payload FROM dead_letters")).scalar()
        db.engine.dispose()
    if "_schema" in cfg:
        _admin_sql(f"DROP SCHEMA {cfg['_schema']} CASCADE")
