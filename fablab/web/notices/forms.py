"""The preferences form: one choice per kind the member may choose for (built per member: staff see staff
kinds), the reminder lead time, and the daily digest with its hour."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField

from ...domain.notice_kinds import Channel, Kind
from ...services.notices import REMINDER_CHOICES
from ..choices import options

CHANNELS = [(Channel.EMAIL.value, "Email and in-app"), (Channel.APP.value, "In-app only"), (Channel.OFF.value, "Off")]
REMINDERS = {0: "No reminder", 15: "15 minutes before", 30: "30 minutes before", 60: "1 hour before",
             120: "2 hours before", 1440: "1 day before"}
PREFIX = "kind_"


class SettingsForm(FlaskForm):
    reminder_minutes = SelectField("Reminder before a booking", coerce=int,
                                   choices=options((m, REMINDERS[m]) for m in REMINDER_CHOICES), default=60)
    digest = BooleanField("Gather non-urgent mails into one daily digest",
                          description="Urgent notices (offers, reminders, check-in deadlines) still come at once.")
    digest_hour = SelectField("Digest time", coerce=int, default=7,
                              choices=options((h, f"{h:02d}:00") for h in range(24)),
                              description="In the lab's time zone.")


def preferences_form(kinds: list[Kind], channels: dict[str, Channel], **kw: Any) -> SettingsForm:
    """A form with a select per choosable (non-safety) kind, named kind_<name>, preset to the current choice."""

    class PreferencesForm(SettingsForm):
        pass

    for k in kinds:
        if k.safety:
            continue
        setattr(PreferencesForm, PREFIX + k.name,
                SelectField(k.name, choices=options(CHANNELS), default=channels[k.name].value))
    return PreferencesForm(**kw)


def kind_field(form: SettingsForm, name: str) -> Any:
    return getattr(form, PREFIX + name, None)
