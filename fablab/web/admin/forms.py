from flask_wtf import FlaskForm
from wtforms import (
    EmailField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Email, Length, Optional, Regexp, ValidationError

from ..choices import options
from ..fields import BoundedDateField


class MachineForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    slug = StringField(
        "Short name (URL)",
        validators=[DataRequired(), Length(max=60),
                    Regexp(r"^[a-z0-9][a-z0-9-]*$", message="Lower-case letters, digits and dashes only.")],
    )
    type_id = SelectField("Type", coerce=int, validators=[DataRequired()])
    location = StringField("Location", validators=[Optional(), Length(max=120)])
    description = TextAreaField("Description", validators=[Optional(), Length(max=5000)])
    status = SelectField(
        "Status",
        choices=options([("available", "Available"), ("out_of_order", "Out of order"), ("retired", "Retired")]),
    )
    qualification_scope = SelectField(
        "Qualification needed",
        choices=options([("type", "Any qualification for this type of machine"), ("machine", "For this machine only")]),
    )


class MemberForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    email = EmailField("Email", validators=[DataRequired(), Email(), Length(max=254)])
    role = SelectField("Role", choices=options([("member", "Member"), ("steward", "Steward"), ("admin", "Admin")]))
    password = PasswordField("New password", validators=[Optional(), Length(min=10, max=200)],
                             description="Leave empty to keep the current one. At least 10 characters.")
    badge_uid = StringField("Badge UID", validators=[Optional(), Length(max=64)],
                            description="Scan or type the badge's UID. Leave empty to keep the current one.")
    pin = PasswordField("Kiosk PIN", validators=[Optional(), Regexp(r"^\d{4,8}$", message="4 to 8 digits.")],
                        description="Leave empty to keep the current one.")
    share = StringField("Fair-share weight", default="1.0")

    def validate_share(self, field: StringField) -> None:
        try:
            value = float(field.data)
        except (TypeError, ValueError):
            raise ValidationError("A number such as 1.0.") from None
        if not 0 < value <= 10:
            raise ValidationError("Between 0 (exclusive) and 10.")


class GrantForm(FlaskForm):
    scope = SelectField("Qualified for", validators=[DataRequired()])
    expires = BoundedDateField("Expires on", validators=[Optional()])
    note = StringField("Note", validators=[Optional(), Length(max=255)])
