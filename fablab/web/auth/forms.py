from typing import Any

from flask import current_app
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Regexp
from wtforms.widgets import TextInput

from ..choices import options


class LoginForm(FlaskForm):
    # No format check at sign-in: a lab may use internal addresses, and the lookup decides anyway.
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if current_app.config.get("FABLAB_LDAP_URL"):  # directory people may type their username
            self.email.label.text = "Email or username"
            self.email.widget = TextInput()
            self.email.render_kw = {"autocomplete": "username", "autocapitalize": "none"}


class TokenForm(FlaskForm):
    name = StringField("Token name", validators=[DataRequired(), Length(max=80)],
                       description="What it is for, e.g. “my calendar script”.")
    scope = SelectField("Access", choices=options([("read", "Read only"), ("write", "Read and write")]), default="read",
                        description="Read only is enough for calendars and dashboards.")
    expires_days = SelectField("Expires", choices=options([("30", "in 30 days"), ("90", "in 90 days"),
                                                           ("365", "in a year"), ("", "never")]), default="90")


class PasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[DataRequired(), Length(max=200)])
    new = PasswordField("New password", validators=[DataRequired(), Length(min=10, max=200)],
                        description="At least 10 characters.")


class PinForm(FlaskForm):
    current = PasswordField("Your password", validators=[DataRequired(), Length(max=200)])
    pin = PasswordField("New kiosk PIN", validators=[DataRequired(), Regexp(r"^\d{4,8}$", message="4 to 8 digits.")])
