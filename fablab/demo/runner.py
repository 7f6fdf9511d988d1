"""`fablab demo`: everything a newcomer needs on one machine, from one command: the web app on the
demo lab, an MQTT broker, the usage worker, the mail delivery (`fablab notify`, into an embedded SMTP sink
unless FABLAB_SMTP_URL is set), and two simulated machines (a Marlin printer and a GRBL laser) each behind a
real pseudo-terminal with a real `fablab-bridge` reporting their use."""

from __future__ import annotations

import atexit
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import click
from flask import Flask, current_app
from werkzeug.serving import run_simple

from ..extensions import db
from ..models.types import utcnow
from .accounts import demo_signup_settings
from .broker import DemoBroker, find_mosquitto
from .lab import DEMO_PASSWORD, demo_logins, seed
from .mail_sink import demo_smtp

DEMO_MACHINES = {"ender-3": "marlin", "laser-k40": "grbl"}
BRIDGE_ID = "demo-bridge"


def _bridge_toml(state_dir: Path, broker_port: int, password: str | None, ports: dict[str, str]) -> str:
    auth = f'username = "{BRIDGE_ID}"\npassword = "{password}"\n' if password else ""
    out = [f'[bridge]\nid = "{BRIDGE_ID}"\nstate_dir = "{state_dir}"\nlog_level = "warning"\n',
           f'[mqtt]\nhost = "127.0.0.1"\nport = {broker_port}\n{auth}']
    for slug, driver in DEMO_MACHINES.items():
        out.append(f'[[machine]]\nid = "{slug}"\ndriver = "{driver}"\nport = "{ports[slug]}"\n'
                   f'poll_interval = 1.0\ntelemetry_interval = 10.0\nsession_idle_s = 120\n')
    return "\n".join(out)


class Autopilot:
    """Starts a print and a laser job now and then, so the demo shows machines reporting real use."""

    def __init__(self, marlin: object, grbl: object, every_s: float = 150.0) -> None:
        self.marlin, self.grbl, self.every_s = marlin, grbl, every_s
        self._stop = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._run, name="demo-autopilot", daemon=True).start()

    def _run(self) -> None:
        time.sleep(15)  # let the bridge connect first
        while not self._stop.is_set():
            if not getattr(self.marlin, "printing", False):
                self.marlin.start_print("demo-benchy.gcode")  # type: ignore[attr-defined]
            if getattr(self.grbl, "state", "Idle") == "Idle":
                self.grbl.run_job(moves=500)  # type: ignore[attr-defined]
            self._stop.wait(self.every_s)

    def stop(self) -> None:
        self._stop.set()


def _book_demo_use(app: Flask) -> str:
    """A booking on the printer covering now for the first member allowed to use it, so the simulated
    print checks it in by itself."""
    from ..domain import policy as pol
    from ..models import Machine, Member, Role
    from ..services import bookings as svc

    with app.app_context():
        printer = db.session.scalar(db.select(Machine).where(Machine.slug == "ender-3"))
        if printer is None:
            return ""
        now = utcnow()
        start = pol.current_slot_start(svc.policy_for(printer), now, svc.lab_tz())
        members = db.session.scalars(db.select(Member).where(Member.role == Role.MEMBER.value)
                                     .order_by(Member.member_no))
        for member in members:
            if svc.check_only(member, printer, start, start + timedelta(hours=2), now):
                continue
            try:
                svc.create_booking(member, printer, start, start + timedelta(hours=2), source="web", now=now)
            except svc.BookingRejected:
                continue
            return f"{member.name} has the Ender 3 booked now; its simulated print checks that booking in."
        return ""


def run_demo(host: str, port: int) -> None:
    from devices.simulators.grbl_sim import GrblSimulator
    from devices.simulators.marlin_sim import MarlinSimulator

    from ..database import upgrade_db
    from ..services import usage as usage_service

    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    upgrade_db()
    click.echo(seed(reset=False))
    work = Path(app.instance_path) / "demo"
    work.mkdir(parents=True, exist_ok=True)

    # Broker, with per-bridge credentials when it is a real Mosquitto.
    broker = DemoBroker(work / "broker")
    (work / "broker").mkdir(exist_ok=True)
    binary = find_mosquitto()
    bridge_password: str | None = None
    server_password = secrets.token_urlsafe(18)
    _, bridge_password = usage_service.add_bridge(BRIDGE_ID, list(DEMO_MACHINES))
    db.session.commit()
    if binary:
        passwd, acl = usage_service.write_mosquitto_files(work / "broker", "fablab-server", server_password)
        db.session.commit()  # end this read: other processes write to the database from now on
        broker.start_mosquitto(binary, passwd, acl)
        mqtt_url = f"mqtt://fablab-server:{server_password}@127.0.0.1:{broker.port}"
    else:
        broker.start_embedded()
        bridge_password = None
        mqtt_url = f"mqtt://127.0.0.1:{broker.port}"
    atexit.register(broker.stop)

    # Simulated machines on real ptys, a real bridge process, a real worker process.
    marlin = MarlinSimulator(files={"demo-benchy.gcode": 240_000}, print_rate=2000.0, seed=1)
    grbl = GrblSimulator(move_time=0.25, seed=2)
    ports = {"ender-3": marlin.start(), "laser-k40": grbl.start()}
    toml = work / "bridge.toml"
    toml.write_text(_bridge_toml(work / "bridge-state", broker.port, bridge_password, ports))
    # Mail: the configured server, else an embedded sink whose mails the admin's "Sent mail" page shows.
    smtp_url, mail_sink = demo_smtp(app)
    demo_signup_settings(app.config)
    if mail_sink is not None:
        atexit.register(mail_sink.stop)
    base = f"http://{'localhost' if host in ('0.0.0.0', '::') else host}:{port}"
    app.config["FABLAB_SMTP_URL"] = smtp_url
    if not os.environ.get("FABLAB_BASE_URL"):
        app.config["FABLAB_BASE_URL"] = base  # links in the mails lead to this demo
    env = dict(os.environ, FABLAB_MQTT_URL=mqtt_url, FABLAB_DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
               FABLAB_SECRET_KEY=app.config["SECRET_KEY"], FABLAB_SMTP_URL=smtp_url,
               FABLAB_BASE_URL=app.config["FABLAB_BASE_URL"], FABLAB_MAIL_FROM=app.config["FABLAB_MAIL_FROM"])
    logs = open(work / "processes.log", "ab")  # noqa: SIM115 - lives as long as the demo
    procs = [
        subprocess.Popen([sys.executable, "-m", "fablab.cli", "worker"], env=env, stdout=logs, stderr=logs),
        subprocess.Popen([sys.executable, "-m", "fablab.cli", "notify"], env=env, stdout=logs, stderr=logs),
        subprocess.Popen([sys.executable, "-m", "fablab_bridge", str(toml)], env=env, stdout=logs, stderr=logs),
    ]

    def _cleanup() -> None:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        marlin.stop()
        grbl.stop()

    atexit.register(_cleanup)
    # Ctrl-C or a plain kill: stop the broker, worker, bridge and simulators too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    booked = _book_demo_use(app)
    Autopilot(marlin, grbl).start()
    from ..services import kiosk as kiosk_service

    _, kiosk_token = kiosk_service.register_kiosk("Demo kiosk")
    db.session.commit()

    click.echo("")
    click.echo(f"  fablab demo lab:   {base}/")
    click.echo(f"  Demo kiosk:        {base}/kiosk/activate/{kiosk_token}  (touch screen view; badges below)")
    click.echo(f"  Broker:            {broker.kind} on 127.0.0.1:{broker.port}; worker and bridge logs in "
               f"{work / 'processes.log'}")
    if mail_sink is not None:
        click.echo(f"  Mail:              embedded SMTP sink on 127.0.0.1:{mail_sink.port}; what members would "
                   f"receive is under Admin > Sent mail ({base}/admin/mail/sent)")
    else:
        click.echo("  Mail:              sent through FABLAB_SMTP_URL; the outbox is under Admin > Outbox")
    click.echo("  Simulated machines: Ender 3 V2 (Marlin) and K40 laser (GRBL) start jobs every few minutes.")
    if booked:
        click.echo(f"                     {booked}")
    click.echo(f"  Demo logins (password {DEMO_PASSWORD}):")
    for login in demo_logins()[:4]:
        click.echo(f"    {login.role:8} {login.email:28} member no. {login.member_no}  PIN {login.pin}"
                   f"  badge {login.badge}")
    click.echo("")
    run_simple(host, port, app, threaded=True, use_reloader=False)
