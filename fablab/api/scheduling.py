"""Fair scheduling over the API: window requests, window results (with commitment and seed), the
waitlist and its offers, and a member's own fair-share factor."""

from __future__ import annotations

from typing import Any

from ..domain.input_schema import Body, Field
from ..models import Machine
from ..models.scheduling import RequestWindow, SlotRequest, WaitlistEntry, WaitlistOffer
from ..models.types import utcnow
from ..services import catch_up, window_draw
from ..services import fairshare_data as fsd
from ..services import machines as machine_service
from ..services import waitlist as waitlist_service
from ..services import windows as window_service
from ..services.scheduling_common import SchedulingError
from . import bp
from .common import api_member, fail, iso, json_body, ok, query, token_required
from .openapi import document, p, qf

MACHINE = Field("machine", max_length=60, description="only this machine (slug)")
MACHINE_REQUIRED = Field("machine", required=True, max_length=60, description="the machine's slug")
WINDOW = Field("window", "id", description="only this window (id)")
NEW_REQUEST = Body((MACHINE_REQUIRED, Field("start", "datetime", required=True),
                    Field("end", "datetime", required=True),
                    Field("rank", "integer", lo=1, hi=99, description="1 = most wanted"),
                    Field("window", "id", description="window id (default: the open one)")))
JOIN_WAITLIST = Body((MACHINE_REQUIRED, Field("kind", choices=("slot", "any")), Field("start", "datetime"),
                      Field("end", "datetime"), Field("min_hours", "number", lo=0, hi=24 * 7)))


def _machine(slug: Any) -> Machine:
    if not slug or not isinstance(slug, str):
        fail(400, "missing_field", "'machine' (the machine's slug) is required.")
    try:
        return machine_service.machine_by_slug(slug)
    except machine_service.NotFound:
        fail(404, "not_found", f"No machine called {slug!r}.")


def _refused(exc: SchedulingError) -> Any:
    fail(exc.status, exc.code, exc.message)


def request_json(r: SlotRequest) -> dict[str, Any]:
    return {"id": r.id, "window_id": r.window_id, "machine": r.window.machine.slug, "start": iso(r.start_at),
            "end": iso(r.end_at), "rank": r.rank, "status": r.status, "reason": r.reason or None,
            "message": r.message or None, "round": r.round_no, "factor": r.factor, "booking_id": r.booking_id}


def window_json(w: RequestWindow) -> dict[str, Any]:
    return {"id": w.id, "machine": w.machine.slug, "mode": w.mode, "status": w.status,
            "period_start": iso(w.period_start), "period_end": iso(w.period_end), "opens_at": iso(w.opens_at),
            "closes_at": iso(w.closes_at), "commitment": w.commitment, "seed": w.revealed_seed}


def entry_json(e: WaitlistEntry) -> dict[str, Any]:
    return {"id": e.id, "machine": e.machine.slug, "kind": e.kind, "start": iso(e.start_at), "end": iso(e.end_at),
            "min_hours": e.min_hours, "status": e.status, "joined_at": iso(e.joined_at)}


def offer_json(o: WaitlistOffer) -> dict[str, Any]:
    return {"id": o.id, "machine": o.machine.slug, "start": iso(o.start_at), "end": iso(o.end_at),
            "offered_at": iso(o.offered_at), "expires_at": iso(o.expires_at), "first_come": o.first_come,
            "status": o.status, "booking_id": o.booking_id}


def _now() -> Any:
    now = utcnow()
    catch_up.scheduling_state_quietly(now)
    return now


# --- requests --------------------------------------------------------------------------------------------

document("/requests", "GET", "My requests in request windows (newest window first)",
         params=[qf(MACHINE), qf(WINDOW)], responses={"200": "OK", "404": "Unknown machine"})
document("/requests", "POST", "Add a ranked request to the machine's open request window",
         body=NEW_REQUEST,
         responses={"201": "Created", "400": "Bad input", "404": "Unknown machine or no open window",
                    "409": "Window closed or duplicate", "422": "A booking rule refuses the time"})
document("/requests/{request_id}", "DELETE", "Withdraw one of my requests while its window is open",
         params=[p("request_id", "request id", "integer")],
         responses={"200": "Withdrawn", "404": "Not yours or unknown", "409": "Window closed"})


@bp.get("/requests")
@token_required()
def list_requests() -> Any:
    _now()
    args = query(MACHINE, WINDOW)
    rows = window_service.member_requests(api_member())
    if args.get("machine"):
        m = _machine(args["machine"])
        rows = [r for r in rows if r.machine_id == m.id]
    if "window" in args:
        rows = [r for r in rows if r.window_id == args["window"]]
    return ok({"requests": [request_json(r) for r in rows]})


@bp.post("/requests")
@token_required()
def add_request() -> Any:
    now = _now()
    body = json_body(NEW_REQUEST)
    machine = _machine(body["machine"])
    start, end, rank = body["start"], body["end"], body.get("rank", 1)
    windows = window_service.open_windows(machine)
    if "window" in body:
        windows = [w for w in windows if w.id == body["window"]]
    else:
        windows = [w for w in windows if w.period_start <= start < w.period_end]
    if not windows:
        fail(404, "no_window", f"No open request window of {machine.name} covers that time.")
    try:
        r = window_service.add_request(api_member(), windows[0], start, end, rank, now)
    except SchedulingError as exc:
        _refused(exc)
    return ok(request_json(r), 201)


@bp.delete("/requests/<id:request_id>")
@token_required()
def delete_request(request_id: int) -> Any:
    try:
        window_service.withdraw_request(api_member(), request_id)
    except SchedulingError as exc:
        _refused(exc)
    return ok({"withdrawn": request_id})


# --- windows ---------------------------------------------------------------------------------------------

document("/windows", "GET", "Request windows of a machine (newest first), with commitment and revealed seed",
         params=[qf(MACHINE_REQUIRED)], responses={"200": "OK", "404": "Unknown machine"})
document("/windows/{window_id}", "GET",
         "A window's results: commitment, revealed seed, checks, my outcomes, the anonymised table and the trace",
         params=[p("window_id", "window id", "integer")], responses={"200": "OK", "404": "Unknown window"})


@bp.get("/windows")
@token_required()
def list_windows() -> Any:
    _now()
    machine = _machine(query(MACHINE_REQUIRED)["machine"])
    return ok({"windows": [window_json(w) for w in window_service.windows_of(machine, limit=50)]})


@bp.get("/windows/<id:window_id>")
@token_required()
def window_results(window_id: int) -> Any:
    _now()
    w = window_service.get_window(window_id)
    if w is None:
        fail(404, "not_found", "No such request window.")
    me = api_member()
    res = window_draw.window_results(w, me)
    return ok({**window_json(w), "seed_matches": res.seed_matches, "draw_matches": res.draw_matches,
               "participant": res.my_label, "mine": [request_json(r) for r in res.mine],
               "results": [{"request_id": row.request_id, "start": iso(row.start), "end": iso(row.end),
                            "participant": row.participant, "rank": row.rank, "round": row.round_no,
                            "factor": row.factor, "status": row.status, "reason": row.reason} for row in res.rows],
               "trace_public": res.trace_public, "trace": window_draw.published_trace(w, me)})


# --- waitlist and offers ---------------------------------------------------------------------------------

document("/waitlist", "GET", "My waitlist entries and open offers")
document("/waitlist", "POST", "Join a waitlist: one slot (kind=slot, start/end) or any free time this week (kind=any)",
         body=JOIN_WAITLIST,
         responses={"201": "Created", "400": "Bad input", "403": "Not qualified", "404": "Unknown machine",
                    "409": "Already waiting", "422": "Bad time"})
document("/waitlist/{entry_id}", "DELETE", "Leave a waitlist", params=[p("entry_id", "entry id", "integer")],
         responses={"200": "Left", "404": "Not yours or unknown"})
document("/offers", "GET", "My open offers of freed machine time")
document("/offers/{offer_id}/claim", "POST", "Claim an offer: books the time (first claim wins for first-come offers)",
         params=[p("offer_id", "offer id", "integer")],
         responses={"201": "Booked", "404": "Not yours or unknown", "409": "Offer closed or taken",
                    "422": "A booking rule refuses it"})
document("/offers/{offer_id}/decline", "POST", "Decline an offer; it passes to the next member",
         params=[p("offer_id", "offer id", "integer")], responses={"200": "Declined", "404": "Not yours or unknown"})


@bp.get("/waitlist")
@token_required()
def list_waitlist() -> Any:
    now = _now()
    me = api_member()
    return ok({"entries": [entry_json(e) for e in waitlist_service.member_waitlist(me, now)],
               "offers": [offer_json(o) for o in waitlist_service.member_offers(me, now)]})


@bp.post("/waitlist")
@token_required()
def join_waitlist() -> Any:
    now = _now()
    body = json_body(JOIN_WAITLIST)
    machine = _machine(body["machine"])
    start, end, min_hours = body.get("start"), body.get("end"), body.get("min_hours", 0.0)
    try:
        e = waitlist_service.join_waitlist(api_member(), machine, kind=body.get("kind", "slot"), start=start, end=end,
                                           min_hours=float(min_hours), now=now)
    except SchedulingError as exc:
        _refused(exc)
    return ok(entry_json(e), 201)


@bp.delete("/waitlist/<id:entry_id>")
@token_required()
def leave_waitlist(entry_id: int) -> Any:
    try:
        waitlist_service.leave_waitlist(api_member(), entry_id)
    except SchedulingError as exc:
        _refused(exc)
    return ok({"left": entry_id})


@bp.get("/offers")
@token_required()
def list_offers() -> Any:
    now = _now()
    return ok({"offers": [offer_json(o) for o in waitlist_service.member_offers(api_member(), now)]})


@bp.post("/offers/<id:offer_id>/claim")
@token_required()
def claim_offer(offer_id: int) -> Any:
    now = _now()
    try:
        b = waitlist_service.claim_offer(api_member(), offer_id, now)
    except SchedulingError as exc:
        _refused(exc)
    return ok({"booking": {"id": b.id, "machine": b.machine.slug, "start": iso(b.start_at), "end": iso(b.end_at),
                           "status": b.status}}, 201)


@bp.post("/offers/<id:offer_id>/decline")
@token_required()
def decline_offer(offer_id: int) -> Any:
    try:
        waitlist_service.decline_offer(api_member(), offer_id)
    except SchedulingError as exc:
        _refused(exc)
    return ok({"declined": offer_id})


# --- fair share ------------------------------------------------------------------------------------------

document("/fair-share", "GET", "My fair-share factor F on a machine, its parts and what it means",
         params=[qf(MACHINE_REQUIRED)], responses={"200": "OK", "404": "Unknown machine"})


@bp.get("/fair-share")
@token_required()
def fair_share() -> Any:
    now = _now()
    machine = _machine(query(MACHINE_REQUIRED)["machine"])
    v = fsd.factor_view(api_member(), machine, now)
    return ok({"machine": machine.slug, "mode": window_service.mode_of(machine), "factor": v.factor,
               "usage_fraction": v.usage_fraction, "share": v.share, "recent_hours": v.recent_hours,
               "bonus": v.bonus, "explanation": v.explanation})
