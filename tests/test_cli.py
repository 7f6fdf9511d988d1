from __future__ import annotations

from sqlalchemy import select

from fablab.extensions import db
from fablab.models import ApiToken, Member
from fablab.security import token_digest


def test_create_user_and_token(app, app_ctx) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-user", "Ada@Example.org", "--role", "steward",
                                 "--password", "long-enough-pw"])
    assert result.exit_code == 0, result.output
    member = db.session.scalar(select(Member).where(Member.email == "ada@example.org"))
    assert member.role == "steward" and member.password_hash.startswith("$argon2")
    assert "long-enough-pw" not in member.password_hash

    again = runner.invoke(args=["create-user", "ada@example.org", "--password", "long-enough-pw"])
    assert again.exit_code != 0 and "already exists" in again.output
    short = runner.invoke(args=["create-user", "bo@example.org", "--password", "short"])
    assert short.exit_code != 0 and "10 characters" in short.output

    result = runner.invoke(args=["create-token", "ada@example.org"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    row = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(token)))
    assert row is not None and row.member_id == member.id
    resp = app.test_client().get("/api/v1/machines", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200

    missing = runner.invoke(args=["create-token", "nobody@example.org"])
    assert missing.exit_code != 0 and "No member" in missing.output


def test_grant_and_seed_demo(app, app_ctx) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    assert "8 machines" in result.output
    members = list(db.session.scalars(select(Member)))
    assert len(members) >= 20
    result = runner.invoke(args=["grant", members[-1].email, "cnc_mill", "--expires", "2031-05-01"])
    assert result.exit_code == 0, result.output
    bad = runner.invoke(args=["grant", members[-1].email, "teleporter"])
    assert bad.exit_code != 0 and "No machine or machine type" in bad.output
