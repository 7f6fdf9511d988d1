"""The review's filter: a GET form (no CSRF: it changes nothing), so a filtered review has a shareable URL."""

from __future__ import annotations

from datetime import date

from wtforms import DateField, Form, SelectField
from wtforms.validators import Optional, ValidationError


class ReviewFilter(Form):
    machine = SelectField("Machine", choices=[], default="")
    type = SelectField("Machine type", choices=[], default="")
    start = DateField("From", validators=[Optional()], description="First day (lab time).")
    end = DateField("To", validators=[Optional()], description="Last day, included.")

    def validate_start(self, field: DateField) -> None:
        _in_range(field)

    def validate_end(self, field: DateField) -> None:
        _in_range(field)
        if field.data and self.start.data and field.data < self.start.data:
            raise ValidationError("The last day comes before the first.")


# The lab clock counts from 1970; the far end leaves room for the day after (and any time zone).
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(9998, 12, 31)


def _in_range(field: DateField) -> None:
    if field.data and not FIRST_DAY <= field.data <= LAST_DAY:
        raise ValidationError(f"Choose a day between {FIRST_DAY.year} and {LAST_DAY.year}.")
