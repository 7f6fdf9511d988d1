"""A realistic demo lab: machines of several types, members with qualifications, and (as features
arrive) bookings, usage history and designs. Deterministic (fixed random seed) so screenshots and
tests see the same lab."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from ..extensions import db
from ..models import Machine, MachineType, Member
from ..models.types import utcnow
from ..services import machines as machine_service
from ..services import members as member_service

DEMO_PASSWORD = "demo-password"

TYPES = [
    ("3d_printer", "3D printer"),
    ("laser_cutter", "Laser cutter"),
    ("cnc_mill", "CNC mill"),
    ("vinyl_cutter", "Vinyl cutter"),
    ("electronics", "Electronics bench"),
]

MACHINES = [
    ("prusa-mk4-1", "Prusa MK4 #1", "3d_printer", "Print corner", "Prusa MK4, 0.4 mm nozzle, PLA/PETG."),
    ("prusa-mk4-2", "Prusa MK4 #2", "3d_printer", "Print corner", "Prusa MK4, 0.6 mm nozzle, PETG/ASA."),
    ("ender-3", "Ender 3 V2", "3d_printer", "Print corner", "Marlin firmware, good for first prints."),
    ("laser-epilog", "Epilog Fusion Pro 32", "laser_cutter", "Laser room", "60 W CO2 laser, 812 × 508 mm bed."),
    ("laser-k40", "K40 laser", "laser_cutter", "Laser room", "Small 40 W laser on GRBL, for engraving."),
    ("cnc-shapeoko", "Shapeoko 4 XXL", "cnc_mill", "Wood shop", "GRBL CNC router, 838 × 838 mm."),
    ("vinyl-cameo", "Silhouette Cameo 4", "vinyl_cutter", "Craft table", "Vinyl and paper cutter."),
    ("solder-1", "Soldering station 1", "electronics", "Electronics bench", "Hakko FX-951 with fume extractor."),
]

FIRST = ["Ada", "Bo", "Chen", "Dana", "Emil", "Fatima", "Gus", "Hana", "Ivo", "Jun", "Kemal", "Lena",
         "Mo", "Nina", "Omar", "Pia", "Quinn", "Rosa", "Sami", "Tara"]
LAST = ["Lovelace", "Berg", "Wei", "Scully", "Nilsson", "Haddad", "Grissom", "Novak", "Petrov", "Tanaka",
        "Yilmaz", "Meyer", "Farah", "Kowalski", "Saleh", "Schulz", "Moreau", "Silva", "Virtanen", "Okafor"]


@dataclass(frozen=True)
class DemoLogin:
    email: str
    role: str
    member_no: int
    badge: str | None
    pin: str | None


def demo_logins() -> list[DemoLogin]:
    out = [DemoLogin("admin@fablab.example", "admin", 1001, "0A1B2C3D4E", "1001"),
           DemoLogin("steward@fablab.example", "steward", 1002, "0B2C3D4E5F", "1002")]
    for i in range(20):
        no = 1003 + i
        out.append(DemoLogin(f"{FIRST[i].lower()}@fablab.example", "member", no,
                             f"{0x1000000000 + no * 7919:010X}", f"{no}"))
    return out


def _reset() -> None:
    for table in reversed(db.metadata.sorted_tables):
        db.session.execute(table.delete())
    db.session.commit()


def seed(reset: bool = False) -> str:
    if reset:
        _reset()
    if db.session.scalar(select(Member).limit(1)) is not None:
        return "The database already has data; use --reset to replace it with the demo lab."
    rng = random.Random(42)
    now = utcnow()
    types = {}
    for slug, name in TYPES:
        types[slug] = MachineType(slug=slug, name=name)
        db.session.add(types[slug])
    machines = {}
    for slug, name, tslug, loc, desc in MACHINES:
        machines[slug] = Machine(slug=slug, name=name, machine_type=types[tslug], location=loc, description=desc)
        db.session.add(machines[slug])
    db.session.flush()

    members: list[Member] = []
    for i, login in enumerate(demo_logins()):
        if i < 2:
            name = "Admin Adler" if login.role == "admin" else "Steward Stein"
        else:
            name = f"{FIRST[i - 2]} {LAST[i - 2]}"
        m = member_service.create_member(login.email, name, login.role, DEMO_PASSWORD, member_no=login.member_no)
        member_service.set_badge(m, login.badge)
        member_service.set_pin(m, login.pin)
        members.append(m)
    admin, steward = members[0], members[1]
    for tslug in types:
        for staff in (admin, steward):
            machine_service.grant(staff, by=None, machine_type=types[tslug])
    # Ada, the first demo member in the README, may use printers, lasers and the electronics bench.
    for tslug in ("3d_printer", "laser_cutter", "electronics"):
        machine_service.grant(members[2], by=steward, machine_type=types[tslug])
    # Most members are qualified for printers, many for the laser, fewer for the CNC.
    for m in members[3:]:
        for tslug, p in (("3d_printer", 0.9), ("laser_cutter", 0.6), ("cnc_mill", 0.3),
                         ("vinyl_cutter", 0.5), ("electronics", 0.7)):
            if rng.random() < p:
                expires = None
                if rng.random() < 0.15:
                    # A few lapsed inductions, so the "expired" path shows up in the demo.
                    expires = now - timedelta(days=rng.randint(1, 60))
                machine_service.grant(m, by=steward, machine_type=types[tslug], expires_at=expires)
    db.session.commit()
    extra = _seed_more(machines, members, rng)
    return f"Demo lab ready: {len(machines)} machines, {len(members)} members{extra}. Password: {DEMO_PASSWORD}"


def _seed_more(machines: dict[str, Machine], members: list[Member], rng: random.Random) -> str:
    """The features' own demo data: history (bookings, usage), designs, request windows and tasks."""
    from .accounts import seed_accounts_demo
    from .designs import seed_designs_demo
    from .inductions import seed_inductions_demo
    from .notices import seed_notices_demo
    from .scheduling import seed_scheduling_demo

    parts = [seed_scheduling_demo(machines, members, rng)]  # first: it steps aside if windows exist
    seed_history: Callable[[dict[str, Machine], list[Member], random.Random], str] | None
    try:
        from .history import seed_history_demo as seed_history
    except ImportError:  # pragma: no cover - only while the review feature is absent
        seed_history = None
    if seed_history is not None:
        parts.append(seed_history(machines, members, rng))
    parts.append(seed_designs_demo(machines, members, rng))
    parts.append(seed_inductions_demo(machines, members))
    parts.append(seed_accounts_demo(members))
    parts.append(seed_notices_demo(machines, members))  # last: the others' bookings are in place
    return "".join(f"; {p.strip(' ,;.')}" for p in parts if p and p.strip(' ,;.'))
