"""Turning a notice into words: `templates/notices/<kind>.txt`, one template per kind with three blocks,

    {% block subject %}   the mail's subject line
    {% block summary %}   one line for the notices page, the top bar and the kiosk
    {% block text %}      the plain-text mail body

and optionally `templates/notices/<kind>.html` for the HTML mail body (a separate file because only
.html templates are autoescaped: names and titles in params are text other people chose).

Each sees the notice's `params`, `member` (the recipient), `link` (absolute URL or None), `lab_name` and
`fmt_time` (an ISO string from params -> the lab's local "Tue 1 Dec, 14:15"). A missing block falls back:
summary -> subject; no .html template -> the text, escaped, a paragraph per blank line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from jinja2 import TemplateNotFound
from markupsafe import escape

from .notify import absolute_url


@dataclass(frozen=True)
class Rendered:
    subject: str
    summary: str
    text: str
    html: str


def fmt_time(iso: str | None) -> str:
    """An ISO time from a notice's params in the lab's zone, as a member reads it."""
    if not iso:
        return ""
    try:
        t = datetime.fromisoformat(iso)
    except ValueError:
        return str(iso)
    local = t.astimezone(current_app.config["TZ"])
    return f"{local:%a} {local.day} {local:%b}, {local:%H:%M}"


def _block(template: Any, name: str, context: Mapping[str, Any]) -> str | None:
    block = template.blocks.get(name)
    if block is None:
        return None
    return "".join(block(template.new_context(dict(context)))).strip()


def render(kind: str, params: Mapping[str, Any], member: Any, link: str | None = None) -> Rendered:
    """The four texts of one notice for one recipient."""
    env = current_app.jinja_env
    template = env.get_template(f"notices/{kind}.txt")
    context = {"params": params, "member": member, "link": absolute_url(link) if link else None,
               "lab_name": current_app.config["FABLAB_LAB_NAME"], "fmt_time": fmt_time}
    subject = " ".join((_block(template, "subject", context) or kind).split())
    summary = " ".join((_block(template, "summary", context) or subject).split())
    text = _block(template, "text", context) or summary
    try:
        html = env.get_template(f"notices/{kind}.html").render(context).strip()
    except TemplateNotFound:
        html = "".join(f"<p>{escape(p)}</p>" for p in text.split("\n\n"))
    return Rendered(subject=subject, summary=summary, text=text, html=html)


def summary(notice: Any) -> str:
    """The one line the notices page shows for a Notice row."""
    return render(notice.kind, notice.params or {}, notice.member, notice.link).summary
