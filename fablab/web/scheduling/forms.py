from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp

from ..choices import options
from ..fields import BoundedDateField, BoundedDateTimeLocalField, FiniteFloatField

MODES = options([("open", "Open: first come, first served (quotas apply)"),
                 ("window", "Request window: requests are collected, then shared fairly"),
                 ("hybrid", "Hybrid: only contested slots go through the window")])
WEEKDAY_CHOICES = options([(i, d) for i, d in enumerate(
    ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"))])
HHMM = Regexp(r"^([01]\d|2[0-3]):[0-5]\d$", message="HH:MM, e.g. 20:00.")
TASK_KINDS = options([("maintenance", "Maintenance"), ("induction", "Induction to give"),
                      ("cleaning", "Cleaning"), ("restocking", "Restocking"), ("other", "Other")])


class SchedulingPolicyForm(FlaskForm):
    mode = SelectField("Mode", choices=MODES)
    open_weekday = SelectField("Window opens on", coerce=int, choices=WEEKDAY_CHOICES)
    open_time = StringField("at", validators=[InputRequired(), HHMM])
    close_weekday = SelectField("Window closes on", coerce=int, choices=WEEKDAY_CHOICES,
                                description="Requests collected in a week are for the following week (Mon–Sun).")
    close_time = StringField("at", validators=[InputRequired(), HHMM])
    auto_open = BooleanField("Open each week's window automatically")
    request_minutes = IntegerField("Length of the slots members rank (minutes)",
                                   validators=[InputRequired(), NumberRange(15, 24 * 60)])
    quota_hours = FiniteFloatField("Hours per member per window", validators=[Optional(), NumberRange(0.25, 168)],
                             description="Empty: no limit (the booking rules' weekly hours still apply).")
    quota_slots = IntegerField("Slots per member per window", validators=[Optional(), NumberRange(1, 100)],
                               description="Empty: no limit.")
    band_width = FiniteFloatField("Priority band width", validators=[InputRequired(), NumberRange(0.01, 1)],
                            description="Members whose F differs by less than this draw lots (0.1 is usual).")
    half_life_days = FiniteFloatField("Usage half-life (days)", validators=[InputRequired(), NumberRange(0.5, 365)],
                                description="Half of past use is forgotten after this many days.")
    bonus_enabled = BooleanField("Contributions raise the share (at most +25 %)",
                                 description="Off by default: contributions are not traded for machine time.")
    hold_minutes = IntegerField("Waitlist offer held for (minutes)", validators=[InputRequired(), NumberRange(1, 1440)])
    first_come_minutes = IntegerField("First come, first served when the start is closer than (minutes)",
                                      validators=[InputRequired(), NumberRange(0, 2880)])


class OpenWindowForm(FlaskForm):
    period_start = BoundedDateField("Period from (a date)", validators=[Optional()],
                             description="Empty: next week, Monday to Monday.")
    period_days = IntegerField("Days", default=7, validators=[Optional(), NumberRange(1, 28)])
    closes_at = BoundedDateTimeLocalField("Requests close", format="%Y-%m-%dT%H:%M", validators=[Optional()],
                                   description="Empty: per the weekly rhythm above.")


class WaitlistForm(FlaskForm):
    machine = SelectField("Machine", validators=[DataRequired()])
    kind = SelectField("Wait for", choices=options([("any", "Any free time this week"),
                                                    ("slot", "This exact time")]))
    start = BoundedDateTimeLocalField("From", format="%Y-%m-%dT%H:%M", validators=[Optional()])
    end = BoundedDateTimeLocalField("Until", format="%Y-%m-%dT%H:%M", validators=[Optional()])
    min_hours = FiniteFloatField("At least (hours)", default=0.5, validators=[Optional(), NumberRange(0, 24)])


class TaskForm(FlaskForm):
    title = StringField("Task", validators=[DataRequired(), Length(max=160)])
    kind = SelectField("Kind", choices=TASK_KINDS)
    machine = SelectField("Machine", validators=[Optional()])
    description = TextAreaField("What to do", validators=[Optional(), Length(max=5000)])
    base_hours = FiniteFloatField("Hours it takes", default=1.0, validators=[InputRequired(), NumberRange(0.1, 100)])
    people_needed = IntegerField("People needed", default=1, validators=[InputRequired(), NumberRange(1, 20)])
    rise_per_day = FiniteFloatField("Weight rises per day untaken", default=0.1, validators=[InputRequired(),
                                                                                        NumberRange(0, 1)],
                              description="0.1: +10 % of the hours each day nobody takes it.")
    max_factor = FiniteFloatField("Weight at most (× hours)", default=2.0,
                                  validators=[InputRequired(), NumberRange(1, 5)])
