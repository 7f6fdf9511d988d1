"""`fablab demo`: everything a newcomer needs on one machine, started from one command."""

from __future__ import annotations

import click
from flask import current_app
from werkzeug.serving import run_simple

from .demo import DEMO_PASSWORD, demo_logins, seed


def run_demo(host: str, port: int) -> None:
    from .cli import upgrade_db

    upgrade_db()
    click.echo(seed(reset=False))
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    base = f"http://{host}:{port}"
    click.echo("")
    click.echo(f"  fablab demo lab:  {base}/")
    click.echo(f"  Demo logins (password {DEMO_PASSWORD}):")
    for login in demo_logins()[:4]:
        click.echo(f"    {login.role:8} {login.email:28} member no. {login.member_no}  PIN {login.pin}"
                   f"  badge {login.badge}")
    click.echo("    … and more members: see `fablab seed-demo` in the README.")
    click.echo("")
    run_simple(host, port, app, threaded=True, use_reloader=False)
