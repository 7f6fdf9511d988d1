from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, IntegerField, SelectField, StringField, TimeField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from ..choices import options

WEEKDAY_CHOICES = options(enumerate(("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")))
REPEAT_CHOICES = options([(1, "Every week"), (2, "Every other week")])


class SeriesForm(FlaskForm):
    machine = SelectField("Machine", validators=[DataRequired()])
    kind = SelectField("What", validators=[DataRequired()])
    member_no = IntegerField("Member number", validators=[Optional(), NumberRange(1, 10**9)],
                             description="Whose booking it is (for a booking for a member).")
    title = StringField("Title or reason", validators=[Optional(), Length(max=200)],
                        description="Shown on the calendar, e.g. “Laser induction” or “Clean the optics”.")
    weekday = SelectField("Weekday", coerce=int, choices=WEEKDAY_CHOICES)
    start_time = TimeField("Starts at", validators=[InputRequired()], format="%H:%M")
    minutes = IntegerField("Length (minutes)", validators=[InputRequired(), NumberRange(1, 24 * 60)])
    every_weeks = SelectField("Repeats", coerce=int, choices=REPEAT_CHOICES)
    first_day = DateField("From", validators=[InputRequired()])
    until = DateField("Until", validators=[InputRequired()])
    displace = BooleanField("Cancel bookings in the way (their members are told why)")
    confirm = BooleanField("Create the occurrences marked OK and skip the others")
