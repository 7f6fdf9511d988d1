"""The one-tap way out of a "not qualified" / "qualification expired" refusal: the next induction session.

For the booking refusals (fablab/web/bookings/refusals.py), which the integrator wires: when a refusal's code
is in QUALIFICATION, append `next_induction_action(machine, member, now)` if it is not None. Without a session
the way out is asking for one.
"""

from __future__ import annotations

from datetime import datetime

from flask import url_for

from ...models import Machine, Member
from ...services import inductions as svc
from ..bookings.refusals import Action
from ..formatting import localtime


def next_induction_action(machine: Machine, member: Member | None, now: datetime) -> Action:
    """Sign up for the next session with a free place (a refresher included), else the waitlist of the next
    one, else a link to ask for a session."""
    sessions = [i for i in svc.sessions_for_machine(machine, now, member, limit=5) if i.mine is None]
    chosen = next((i for i in sessions if i.places_left > 0), sessions[0] if sessions else None)
    if chosen is None:
        return Action(f"Ask for a {machine.machine_type.name} induction", url_for("inductions.index"), method="get")
    s = chosen.session
    when = localtime(s.start_at, "%a %d %b, %H:%M")
    label = (f"Sign up for the induction on {when} ({chosen.places_left} places left)" if chosen.places_left
             else f"Join the waitlist for the induction on {when}")
    return Action(label, url_for("inductions.signup", session_id=s.id), primary=True)
