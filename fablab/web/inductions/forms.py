from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, SelectField, SelectMultipleField, StringField
from wtforms.validators import URL, DataRequired, Length, NumberRange, Optional


class ScheduleForm(FlaskForm):
    machine_type = SelectField("Machine type", coerce=int, validators=[DataRequired()])
    machine = SelectField("Machine (blocked for the session)", coerce=int, validators=[Optional()],
                          description="Leave “none” for a session away from the machine.")
    start = StringField("Starts (lab time)", validators=[DataRequired(), Length(max=40)],
                        render_kw={"type": "datetime-local"})
    minutes = IntegerField("Length (minutes)", default=120, validators=[DataRequired(), NumberRange(15, 12 * 60)])
    capacity = IntegerField("Places", default=4, validators=[DataRequired(), NumberRange(1, 100)])
    place = StringField("Where", validators=[Length(max=120)])
    prerequisites = SelectMultipleField("Prerequisites", coerce=int, validators=[Optional()],
                                        description="Inductions a member must hold before signing up.")
    material_url = StringField("Material to read first (link)", validators=[Optional(), Length(max=2000),
                                                                         URL(require_tld=False)])
    is_refresher = BooleanField("Refresher (open to members whose qualification lapsed or is about to)")


class RequestForm(FlaskForm):
    machine_type = SelectField("Machine type", coerce=int, validators=[DataRequired()])
