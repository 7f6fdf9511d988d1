from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, Regexp, ValidationError

from ...domain import joining
from ..choices import options

_PIN = Regexp(r"^\d{4,8}$", message="4 to 8 digits.")
_NEW_PASSWORD = [DataRequired(), Length(min=10, max=200, message="At least 10 characters (at most 200).")]


def _address(form: object, field: StringField) -> None:
    if not joining.is_address((field.data or "").strip().lower()):
        raise ValidationError("This is not an email address.")


class SignupForm(FlaskForm):
    name = StringField("Your name", validators=[DataRequired(), Length(max=120)])
    email = EmailField("Email", validators=[DataRequired(), Length(max=254), _address])
    password = PasswordField("Password", validators=_NEW_PASSWORD, description="At least 10 characters.")


class ForgotForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])


class TokenForm(FlaskForm):
    token = HiddenField(validators=[DataRequired(), Length(max=joining.TOKEN_MAX)])


class ResetForm(TokenForm):
    password = PasswordField("New password", validators=_NEW_PASSWORD, description="At least 10 characters.")


class AcceptForm(TokenForm):
    name = StringField("Your name", validators=[DataRequired(), Length(max=120)])
    password = PasswordField("Password", validators=_NEW_PASSWORD, description="At least 10 characters.")
    pin = PasswordField("Kiosk PIN (optional)", validators=[Optional(), _PIN],
                        description="4 to 8 digits, typed at the lab's kiosk with your member number. "
                                    "You can set it later on your account page.")


class InviteForm(FlaskForm):
    addresses = TextAreaField("Email addresses", validators=[DataRequired(), Length(max=40_000)],
                              description="One per line, or separated by commas.")
    name = StringField("Name (optional, for a single address)", validators=[Optional(), Length(max=120)])
    role = SelectField("Role", choices=options([("member", "Member")]), default="member")


class RejectForm(FlaskForm):
    reason = StringField("Reason (optional, told to them)", validators=[Optional(), Length(max=300)])
