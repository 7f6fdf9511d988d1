"""Form fields that hold only what the rest of the app can compute with: finite numbers (WTForms' FloatField
takes 'nan', which passes every NumberRange) and dates within the years of domain/bounded.py (a year 1 or
9999 overflows as soon as a time zone or a day is added)."""

from __future__ import annotations

import math
from typing import Any

from wtforms import DateField, DateTimeLocalField, FloatField
from wtforms.validators import ValidationError

from ..domain import bounded

_YEARS = f"Choose a date between the years {bounded.MIN_YEAR} and {bounded.MAX_YEAR}."


class FiniteFloatField(FloatField):
    data: Any  # a float, or None when empty or refused (as FloatField's)

    def process_formdata(self, valuelist: list[Any]) -> None:
        super().process_formdata(valuelist)
        if self.data is not None and not math.isfinite(self.data):
            self.data = None
            raise ValueError("A number, such as 1.5.")


def _check_year(field: Any) -> None:
    # The data stays (DataRequired would otherwise clear this error); an invalid form is never acted on.
    if field.data is not None and not bounded.MIN_YEAR <= field.data.year <= bounded.MAX_YEAR:
        raise ValidationError(_YEARS)


class BoundedDateField(DateField):
    def pre_validate(self, form: Any) -> None:
        _check_year(self)


class BoundedDateTimeLocalField(DateTimeLocalField):
    def pre_validate(self, form: Any) -> None:
        _check_year(self)
