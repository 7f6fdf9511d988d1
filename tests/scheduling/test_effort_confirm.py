"""Shared effort that cannot be gamed: a completed task counts once somebody else confirmed it (a steward,
or a qualified peer where the lab allows), never its own volunteers; parallel completions and
contributions show names only where the lab made them public. Parallel actions: test_effort_concurrency.py."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fablab.config import load_config
from fablab.extensions import db
from fablab.models.scheduling import EffortTask
from fablab.services import effort as effort_service
from fablab.services import fairshare_data as fsd
from fablab.services import machines as machine_service
from fablab.services.scheduling_common import SchedulingError
from tests.conftest import csrf_token, login

pytestmark = pytest.mark.dates  # runs once per frozen clock (tests/support/clock.py)


def _done_alone(member, *, kind="cleaning", machine=None, title="Clean the laser lens", hours=2.0) -> EffortTask:
    task = effort_service.create_task(title, kind=kind, base_hours=hours, machine=machine)
    effort_service.claim_task(member, task)
    effort_service.complete_task(member, task)
    return task


def test_work_done_alone_is_pending_until_somebody_else_confirms_it(make_member, make_machine) -> None:
    laser = make_machine("laser")
    alice, bob, carol = make_member(), make_member(), make_member()
    machine_service.grant(bob, by=None, machine=laser)
    db.session.commit()
    task = _done_alone(alice, machine=laser)
    now = datetime.now(UTC)
    # Nothing counts yet: not the ledger, not the lab's totals, not the share bonus's input.
    assert task.completed_at is not None and task.confirmed_at is None
    assert fsd.contributed_hours() == {} and effort_service.lab_contributions() == []
    assert effort_service.confirmed_total(effort_service.member_contributions(alice)) == 0
    awaiting = effort_service.awaiting_confirmation(bob, now)
    assert [v.task.id for v in awaiting] == [task.id] and awaiting[0].can_confirm
    assert not effort_service.awaiting_confirmation(alice, now)[0].can_confirm

    with pytest.raises(SchedulingError) as own:
        effort_service.confirm_task(alice, task)
    assert own.value.code == "own_work" and own.value.status == 403
    with pytest.raises(SchedulingError) as unqualified:
        effort_service.confirm_task(carol, task)  # a peer, but not qualified on the laser
    assert unqualified.value.code == "not_qualified" and "qualified" in unqualified.value.message

    effort_service.confirm_task(bob, task)
    assert task.confirmed_by_id == bob.id
    assert fsd.contributed_hours() == {alice.id: pytest.approx(2.0)}
    assert effort_service.awaiting_confirmation(bob, now) == []
    with pytest.raises(SchedulingError) as again:
        effort_service.confirm_task(make_member(role="steward"), task)
    assert again.value.code == "already_confirmed" and again.value.status == 409


def test_steward_kinds_need_a_steward_and_a_stewards_own_work_needs_someone_else(make_member, make_machine) -> None:
    laser = make_machine("laser")
    alice, peer = make_member(), make_member()
    steward, other_steward = make_member(role="steward"), make_member(role="steward")
    machine_service.grant(peer, by=None, machine=laser)
    db.session.commit()
    task = _done_alone(alice, kind="maintenance", machine=laser)
    with pytest.raises(SchedulingError) as peer_refused:
        effort_service.confirm_task(peer, task)  # qualified, but maintenance is the stewards' to confirm
    assert peer_refused.value.code == "steward_only"
    effort_service.confirm_task(steward, task)
    assert task.confirmed_at is not None

    own = _done_alone(steward, kind="maintenance", machine=laser, title="Replace the honeycomb bed")
    assert own.confirmed_at is None  # a steward who did the work is a volunteer like any other
    with pytest.raises(SchedulingError, match="own work"):
        effort_service.confirm_task(steward, own)
    effort_service.confirm_task(other_steward, own)

    # A steward who did not take the task marking it done is the steward's confirmation.
    vouched = effort_service.create_task("Empty the filter", kind="maintenance", machine=laser)
    effort_service.claim_task(alice, vouched)
    effort_service.complete_task(steward, vouched)
    assert vouched.confirmed_by_id == steward.id


def test_the_lab_chooses_who_confirms_per_kind(app, make_member, make_machine, monkeypatch) -> None:
    laser = make_machine("laser")
    alice, peer = make_member(), make_member()
    machine_service.grant(peer, by=None, machine=laser)
    db.session.commit()
    monkeypatch.setitem(app.config, "FABLAB_TASK_CONFIRM", {**app.config["FABLAB_TASK_CONFIRM"],
                                                            "maintenance": "peer", "cleaning": "steward"})
    maintenance = _done_alone(alice, kind="maintenance", machine=laser)
    effort_service.confirm_task(peer, maintenance)
    cleaning = _done_alone(alice, kind="cleaning", machine=laser, title="Clean the bed")
    with pytest.raises(SchedulingError, match="steward"):
        effort_service.confirm_task(peer, cleaning)

    monkeypatch.setenv("FABLAB_TASK_CONFIRM", "cleaning=steward, maintenance=peer")
    assert load_config(Path(app.instance_path))["FABLAB_TASK_CONFIRM"]["cleaning"] == "steward"
    monkeypatch.setenv("FABLAB_TASK_CONFIRM", "cleaning=whoever")
    with pytest.raises(ValueError, match="FABLAB_TASK_CONFIRM"):
        load_config(Path(app.instance_path))


def test_board_shows_unconfirmed_work_and_refusals_in_place(client, make_member, make_machine) -> None:
    laser = make_machine("laser", name="Laser")
    alice = make_member("alice@example.org", name="Alice Example")
    bob = make_member("bob@example.org", name="Bob Example")
    machine_service.grant(bob, by=None, machine=laser)
    db.session.commit()
    task = effort_service.create_task("Clean the laser lens", kind="cleaning", base_hours=1.5, machine=laser)
    hx = {"HX-Request": "true"}

    login(client, alice.email)
    token = csrf_token(client, "/tasks")
    client.post(f"/tasks/{task.id}/claim", data={"csrf_token": token}, headers=hx)
    done = client.post(f"/tasks/{task.id}/complete", data={"csrf_token": token}, headers=hx)
    html = done.get_data(as_text=True)
    assert done.status_code == 200 and "Done, waiting for confirmation" in html and "unconfirmed" in html
    assert "they count once a steward or a member qualified on Laser confirms it" in html
    assert f"/tasks/{task.id}/confirm" not in html  # no button for one's own work
    refused = client.post(f"/tasks/{task.id}/confirm", data={"csrf_token": token}, headers=hx)
    assert refused.status_code == 403 and "Nobody confirms their own work" in refused.get_data(as_text=True)
    plain = client.post(f"/tasks/{task.id}/confirm", data={"csrf_token": token})  # without htmx: the page
    assert plain.status_code == 403 and "Nobody confirms their own work" in plain.get_data(as_text=True)
    page = client.get("/tasks").get_data(as_text=True)
    assert "0 h confirmed in total" in page and "1 h 30 min waiting for confirmation" in page
    mine = client.get(f"/scheduling/members/{alice.id}/contributions").get_data(as_text=True)
    assert "Clean the laser lens" in mine and "unconfirmed" in mine
    client.post("/logout", data={"csrf_token": token})

    login(client, bob.email)
    token = csrf_token(client, "/tasks")
    board = client.get("/tasks").get_data(as_text=True)
    assert f"/tasks/{task.id}/confirm" in board
    ok = client.post(f"/tasks/{task.id}/confirm", data={"csrf_token": token}, headers=hx)
    assert ok.status_code == 200 and "the hours now count" in ok.get_data(as_text=True)
    assert "Done, waiting for confirmation" not in ok.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(EffortTask, task.id).confirmed_by_id == bob.id


def test_contributions_show_names_only_where_the_lab_made_them_public(app, client, make_member,
                                                                      monkeypatch) -> None:
    alice = make_member("alice@example.org", name="Alice Example")
    make_member("bob@example.org", name="Bob Example")
    make_member("steward@example.org", name="Stella Steward", role="steward")
    task = effort_service.create_task("Restock plywood", kind="restocking")
    effort_service.claim_task(alice, task)
    effort_service.complete_task(make_member(role="steward"), task)  # confirmed by the steward's word
    url = f"/scheduling/members/{alice.id}/contributions"

    login(client, "bob@example.org")
    other = client.get(url).get_data(as_text=True)
    assert "Alice Example" not in other and "Contributions of a member" in other and "Restock plywood" in other
    board = client.get("/tasks").get_data(as_text=True)
    assert "Alice Example" not in board and "a member</a>" in board  # the lab's top list, anonymous
    monkeypatch.setitem(app.config, "FABLAB_CONTRIBUTIONS_PUBLIC", True)
    assert "Contributions of Alice Example" in client.get(url).get_data(as_text=True)
    assert "Alice Example" in client.get("/tasks").get_data(as_text=True)
    monkeypatch.setitem(app.config, "FABLAB_CONTRIBUTIONS_PUBLIC", False)
    token = csrf_token(client, "/tasks")
    client.post("/logout", data={"csrf_token": token})

    for email in ("alice@example.org", "steward@example.org"):  # the member themself, and staff
        login(client, email)
        assert "Contributions of Alice Example" in client.get(url).get_data(as_text=True)
        client.post("/logout", data={"csrf_token": csrf_token(client, "/tasks")})


def test_a_board_action_on_a_task_that_does_not_exist_is_a_404(client, make_member) -> None:
    make_member("alice@example.org")
    login(client, "alice@example.org")
    token = csrf_token(client, "/tasks")
    resp = client.post("/tasks/999999/confirm", data={"csrf_token": token}, headers={"HX-Request": "true"})
    assert resp.status_code == 404
    assert re.search(r"no such task", resp.get_data(as_text=True), re.I)


