"""Durable bridge state in SQLite: the event outbox and each machine's sequence number and open session.

An event is written (with its sequence number) in one transaction before anything is sent, and its row
is deleted only after the broker's PUBACK, so a broker outage or a bridge restart loses nothing and the
order is kept. A resend after a crash may duplicate a message; consumers dedupe on ``msg_id``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS machine_state (
    machine TEXT PRIMARY KEY,
    seq INTEGER NOT NULL DEFAULT 0,
    session_id TEXT,
    session_badge TEXT,
    job_open INTEGER NOT NULL DEFAULT 0
);
"""


@dataclass
class OutboxRow:
    id: int
    topic: str
    payload: bytes


@dataclass
class MachineState:
    seq: int = 0
    session_id: str | None = None
    session_badge: dict | None = None
    job_open: bool = False


class Store:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()
        self.changed = threading.Event()  # set when a row is appended

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -------------------------------------------------------------------------------- machine state
    def machine_state(self, machine: str) -> MachineState:
        with self._lock:
            row = self._db.execute(
                "SELECT seq, session_id, session_badge, job_open FROM machine_state WHERE machine=?", (machine,)
            ).fetchone()
        if row is None:
            return MachineState()
        return MachineState(row[0], row[1], json.loads(row[2]) if row[2] else None, bool(row[3]))

    def append_event(self, machine: str, state: MachineState, build: Callable[[int], tuple[str, bytes]]) -> bytes:
        """Allocate the next ``seq``, build the payload with ``build(seq) -> (topic, payload)``, and store
        both the new machine state and the outbox row atomically. Returns the payload."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT seq FROM machine_state WHERE machine=?", (machine,)).fetchone()
                seq = (row[0] if row else 0) + 1
                topic, payload = build(seq)
                state.seq = seq
                self._save_state(machine, state)
                self._db.execute(
                    "INSERT INTO outbox (topic, payload, created) VALUES (?, ?, ?)", (topic, payload, time.time())
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        self.changed.set()
        return payload

    def save_state(self, machine: str, state: MachineState) -> None:
        with self._lock:
            self._save_state(machine, state)

    def _save_state(self, machine: str, state: MachineState) -> None:
        self._db.execute(
            "INSERT INTO machine_state (machine, seq, session_id, session_badge, job_open) VALUES (?,?,?,?,?) "
            "ON CONFLICT(machine) DO UPDATE SET seq=excluded.seq, session_id=excluded.session_id, "
            "session_badge=excluded.session_badge, job_open=excluded.job_open",
            (
                machine,
                state.seq,
                state.session_id,
                json.dumps(state.session_badge) if state.session_badge else None,
                int(state.job_open),
            ),
        )

    # -------------------------------------------------------------------------------- outbox
    def head(self) -> OutboxRow | None:
        with self._lock:
            row = self._db.execute("SELECT id, topic, payload FROM outbox ORDER BY id LIMIT 1").fetchone()
        return OutboxRow(row[0], row[1], bytes(row[2])) if row else None

    def delete(self, row_id: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM outbox WHERE id=?", (row_id,))

    def pending(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]

    def head_or_wait(self, timeout: float) -> OutboxRow | None:
        """The oldest row, or wait up to ``timeout`` for one to be appended (then None)."""
        self.changed.clear()
        row = self.head()
        if row is None:
            self.changed.wait(timeout)
        return row
