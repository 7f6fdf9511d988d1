from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length


class KioskForm(FlaskForm):
    name = StringField("Kiosk name", validators=[DataRequired(), Length(max=80)],
                       description="Where it hangs, e.g. “Front door”.")
