"""The review's filter: a GET form (no CSRF: it changes nothing), so a filtered review has a shareable URL."""

from __future__ import annotations

from wtforms import DateField, Form, SelectField
from wtforms.validators import Optional, ValidationError


class ReviewFilter(Form):
    machine = SelectField("Machine", choices=[], default="")
    type = SelectField("Machine type", choices=[], default="")
    start = DateField("From", validators=[Optional()], description="First day (lab time).")
    end = DateField("To", validators=[Optional()], description="Last day, included.")

    def validate_end(self, field: DateField) -> None:
        if field.data and self.start.data and field.data < self.start.data:
            raise ValidationError("The last day comes before the first.")
