"""Where a member without the qualification is pointed to the next induction sessions: "find a time" lists
them for each machine (or type) it could not offer because the member is not (or no longer) qualified."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from ..models import Machine, Member
from . import inductions as svc
from . import machines as machine_service


@dataclass(frozen=True)
class InductionOffer:
    """Sessions that would qualify the member for `machines` (all of one type, or one machine-scoped one)."""

    label: str  # the type's name, or the machine's for a per-machine qualification
    machines: list[Machine]
    sessions: list[svc.SessionInfo]
    type_id: int


def for_machines(member: Member, machines: Iterable[Machine], now: datetime, limit: int = 3) -> list[InductionOffer]:
    """One offer per type (or machine-scoped machine) the member is not qualified for, with its next sessions
    (an empty list: none scheduled, so the page offers to ask for one)."""
    groups: dict[tuple[int, int | None], list[Machine]] = {}
    for m in machines:
        if machine_service.qualification_state(member, m, now).qualified:
            continue
        key = (m.type_id, m.id if m.qualification_scope == "machine" else None)
        groups.setdefault(key, []).append(m)
    offers = []
    for (type_id, machine_id), ms in groups.items():
        label = ms[0].name if machine_id is not None else ms[0].machine_type.name
        sessions = [i for i in svc.sessions_for_machine(ms[0], now, member, limit=limit)]
        offers.append(InductionOffer(label, ms, sessions, type_id))
    return sorted(offers, key=lambda o: o.label)
