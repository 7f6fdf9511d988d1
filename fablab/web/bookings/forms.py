from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from ..choices import options
from ..fields import BoundedDateTimeLocalField

MODES = options([("open", "Open: first come, first served (quotas apply)"),
                 ("window", "Request window: requests are collected, then shared fairly"),
                 ("hybrid", "Hybrid: only contested slots go through the window")])


class PolicyForm(FlaskForm):
    slot_minutes = IntegerField("Slot size (minutes)", validators=[InputRequired(), NumberRange(5, 240)])
    min_minutes = IntegerField("Shortest booking (minutes)", validators=[InputRequired(), NumberRange(5, 24 * 60)])
    max_minutes = IntegerField("Longest booking (minutes)", validators=[InputRequired(), NumberRange(5, 7 * 24 * 60)])
    horizon_days = IntegerField("Bookable how many days ahead", validators=[InputRequired(), NumberRange(0, 365)])
    buffer_minutes = IntegerField("Buffer between bookings (min)", validators=[InputRequired(), NumberRange(0, 240)])
    checkin_grace_minutes = IntegerField("Check-in grace (minutes)", validators=[InputRequired(), NumberRange(0, 240)])
    max_hours_per_day = StringField("Max hours per member per day", validators=[Optional(), Length(max=8)],
                                    description="Empty: no limit.")
    max_hours_per_week = StringField("Max hours per member per week", validators=[Optional(), Length(max=8)],
                                     description="Empty: no limit.")
    max_future_bookings = StringField("Max upcoming bookings per member", validators=[Optional(), Length(max=4)],
                                      description="Empty: no limit.")
    qualification_required = BooleanField("A qualification is required")
    mode = SelectField("Mode", choices=MODES)
    mon = StringField("Monday", validators=[Optional(), Length(max=80)])
    tue = StringField("Tuesday", validators=[Optional(), Length(max=80)])
    wed = StringField("Wednesday", validators=[Optional(), Length(max=80)])
    thu = StringField("Thursday", validators=[Optional(), Length(max=80)])
    fri = StringField("Friday", validators=[Optional(), Length(max=80)])
    sat = StringField("Saturday", validators=[Optional(), Length(max=80)])
    sun = StringField("Sunday", validators=[Optional(), Length(max=80)])


class BlockForm(FlaskForm):
    start = BoundedDateTimeLocalField("From", format="%Y-%m-%dT%H:%M", validators=[DataRequired()])
    end = BoundedDateTimeLocalField("Until", format="%Y-%m-%dT%H:%M", validators=[DataRequired()])
    reason = StringField("Reason", validators=[DataRequired(), Length(max=200)])
