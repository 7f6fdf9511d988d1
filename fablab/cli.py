"""The `fablab` command: database, users, tokens, demo data, the web app and the worker."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, time

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from .database import upgrade_db
from .extensions import db


def register_cli(app: Flask) -> None:
    for cmd in (init_db, create_user, create_token, grant_cmd, seed_demo, run_cmd, demo_cmd, worker_cmd,
                add_bridge_cmd, mosquitto_config_cmd, notify_cmd):
        app.cli.add_command(cmd)


@click.command("init-db")
@with_appcontext
def init_db() -> None:
    """Create or upgrade the database schema to the newest migration."""
    upgrade_db()
    click.echo(f"Database ready: {db.engine.url.render_as_string(hide_password=True)}")


@click.command("create-user")
@click.argument("email")
@click.option("--name", default=None, help="Display name (default: the part before @).")
@click.option("--role", type=click.Choice(["member", "steward", "admin"]), default="member")
@click.option("--password", default=None, help="Prompted for when omitted.")
@with_appcontext
def create_user(email: str, name: str | None, role: str, password: str | None) -> None:
    """Create a member who can sign in with EMAIL."""
    from .services import members

    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 10:
        raise click.ClickException("The password needs at least 10 characters.")
    try:
        member = members.create_member(email, name or email.split("@")[0], role, password)
    except members.MemberError as exc:
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(f"Created {member.role} {member.email} (member no. {member.member_no}).")


@click.command("create-token")
@click.argument("email")
@click.option("--name", default="cli", help="A label to recognise the token by.")
@click.option("--scope", type=click.Choice(["read", "write"]), default="write", show_default=True,
              help="'read' allows only reading; 'write' reading and changing.")
@click.option("--expires-days", type=click.IntRange(min=1, max=3650), default=None,
              help="The token stops working after this many days (default: never).")
@with_appcontext
def create_token(email: str, name: str, scope: str, expires_days: int | None) -> None:
    """Create an API bearer token for EMAIL; the token is printed alone on the last line."""
    from datetime import timedelta

    from .models.types import utcnow
    from .services import members

    member = members.member_by_email(email)
    if member is None:
        raise click.ClickException(f"No member with the email {email}.")
    expires_at = utcnow() + timedelta(days=expires_days) if expires_days else None
    token = members.create_api_token(member, name, scope=scope, expires_at=expires_at)
    db.session.commit()
    until = f", expires {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else ""
    click.echo(f"API token for {member.email} ({scope}{until}; shown once, store it now):")
    click.echo(token)


@click.command("grant")
@click.argument("email")
@click.argument("machine_or_type")
@click.option("--expires", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Last valid day.")
@with_appcontext
def grant_cmd(email: str, machine_or_type: str, expires: datetime | None) -> None:
    """Qualify EMAIL for a machine (by slug) or a machine type (by type slug)."""
    from sqlalchemy import select

    from .models import Machine, MachineType
    from .services import machines, members

    member = members.member_by_email(email)
    if member is None:
        raise click.ClickException(f"No member with the email {email}.")
    exp = None
    if expires is not None:
        exp = datetime.combine(expires.date(), time(23, 59), tzinfo=current_app.config["TZ"]).astimezone(UTC)
    machine = db.session.scalar(select(Machine).where(Machine.slug == machine_or_type))
    mtype = db.session.scalar(select(MachineType).where(MachineType.slug == machine_or_type))
    if machine is None and mtype is None:
        raise click.ClickException(f"No machine or machine type called {machine_or_type!r}.")
    machines.grant(member, by=None, machine=machine, machine_type=None if machine else mtype, expires_at=exp)
    db.session.commit()
    click.echo(f"{member.email} is qualified for {machine_or_type}.")


@click.command("seed-demo")
@click.option("--reset", is_flag=True, help="Delete existing data first.")
@with_appcontext
def seed_demo(reset: bool) -> None:
    """Fill the database with a realistic demo lab (machines, members, bookings, history)."""
    from .demo import seed

    summary = seed(reset=reset)
    click.echo(summary)


@click.command("run")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
@with_appcontext
def run_cmd(host: str, port: int) -> None:
    """Serve the web app (threaded development server; use a WSGI server such as gunicorn in production)."""
    from werkzeug.serving import run_simple

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    click.echo(f"fablab on http://{host}:{port}/")
    run_simple(host, port, app, threaded=True, use_reloader=False)


@click.command("demo")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
@with_appcontext
def demo_cmd(host: str, port: int) -> None:
    """The one-command demo: migrate, seed the demo lab if empty, then serve it with live machines."""
    from .demo.runner import run_demo

    run_demo(host, port)


@click.command("worker")
@click.option("--client-id", default="fablab-worker", help="Fixed id: the broker keeps this session's queue.")
@click.option("--shared", is_flag=True, help="Share the load with other workers ($share/fablab/...); give each "
              "worker its own --client-id.")
@with_appcontext
def worker_cmd(client_id: str, shared: bool) -> None:
    """Ingest machine reports from MQTT and run the timed jobs (no-shows, windows, maintenance)."""
    import logging
    import signal

    from .worker.mqtt import MqttSettings, MqttWorker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    worker = MqttWorker(app, MqttSettings.from_url(app.config["FABLAB_MQTT_URL"]), client_id=client_id,
                        shared=shared)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    signal.signal(signal.SIGINT, lambda *_: worker.stop())
    click.echo(f"fablab worker {client_id} on {app.config['FABLAB_MQTT_URL'].split('@')[-1]}")
    worker.run()


@click.command("notify")
@click.option("--every", default=2.0, type=click.FloatRange(min=0.05), show_default=True,
              help="Seconds between delivery rounds.")
@click.option("--batch", default=500, type=click.IntRange(min=1), show_default=True, help="Mails per round.")
@click.option("--lease", default=300.0, type=click.FloatRange(min=1), show_default=True,
              help="Seconds a claimed mail stays this process's (a killed process's mails go out after it).")
@click.option("--once", is_flag=True, help="One round, then exit.")
@with_appcontext
def notify_cmd(every: float, batch: int, lease: float, once: bool) -> None:
    """Deliver the outbox: mail over FABLAB_SMTP_URL, retried with back-off; several may run side by side."""
    import logging
    import signal
    from datetime import timedelta

    from .services.mail_transport import parse_smtp_url
    from .worker.notify import NotifyWorker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        smtp = parse_smtp_url(app.config["FABLAB_SMTP_URL"])
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    worker = NotifyWorker(app, every=every, limit=batch, lease=timedelta(seconds=lease))
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    signal.signal(signal.SIGINT, lambda *_: worker.stop())
    click.echo(f"fablab notify: mail via {smtp.describe() if smtp else 'nothing (FABLAB_SMTP_URL is empty)'}")
    if once:
        worker.run_once()
    else:
        worker.run()


@click.command("add-bridge")
@click.argument("bridge_id")
@click.argument("machines", nargs=-1, required=True)
@with_appcontext
def add_bridge_cmd(bridge_id: str, machines: tuple[str, ...]) -> None:
    """Register BRIDGE_ID for MACHINES (slugs) and print its MQTT credentials (shown once)."""
    from .services import usage

    try:
        bridge, password = usage.add_bridge(bridge_id, machines)
    except usage.BridgeError as exc:
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(f"Bridge {bridge.bridge_id} may write for: {', '.join(m.slug for m in bridge.machines)}")
    click.echo("Put these in the bridge's config (mqtt.username / mqtt.password), then run "
               "`fablab mosquitto-config DIR` and reload Mosquitto:")
    click.echo(f"username = \"{bridge.bridge_id}\"")
    click.echo(f"password = \"{password}\"")


@click.command("mosquitto-config")
@click.argument("directory", type=click.Path(file_okay=False))
@with_appcontext
def mosquitto_config_cmd(directory: str) -> None:
    """Write Mosquitto password and ACL files for the registered bridges and the server user."""
    from pathlib import Path

    from .services import usage
    from .worker.mqtt import MqttSettings

    settings = MqttSettings.from_url(current_app.config["FABLAB_MQTT_URL"])
    if not settings.username or not settings.password:
        raise click.ClickException("Set FABLAB_MQTT_URL with the server's user and password, "
                                   "e.g. mqtt://fablab:SECRET@127.0.0.1:1883.")
    passwd, acl = usage.write_mosquitto_files(Path(directory), settings.username, settings.password)
    click.echo(f"Wrote {passwd} and {acl}. In mosquitto.conf:\n  password_file {passwd}\n  acl_file {acl}\n"
               "  allow_anonymous false")


def main() -> None:
    from . import create_app

    cli = FlaskGroup(create_app=create_app, add_default_commands=False, load_dotenv=False,
                     help="fablab: booking and usage system for fab labs.")
    cli.main(args=sys.argv[1:], prog_name="fablab")


if __name__ == "__main__":
    main()
