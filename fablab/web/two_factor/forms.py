from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import DataRequired, Length, Optional

_CODE_KW = {"autocomplete": "one-time-code", "autocapitalize": "none", "spellcheck": "false"}


class SignInCodeForm(FlaskForm):
    code = StringField("Code", validators=[DataRequired(), Length(max=64)], render_kw={**_CODE_KW, "autofocus": True},
                       description="The 6 digits your authenticator app shows now, or one of your recovery codes.")


class AppCodeForm(FlaskForm):
    code = StringField("Code from the app", validators=[DataRequired(), Length(max=64)],
                       render_kw={**_CODE_KW, "inputmode": "numeric"},
                       description="The 6 digits the app shows now.")


class DisableForm(FlaskForm):
    password = PasswordField("Your password", validators=[Optional(), Length(max=200)])
    code = StringField("Code", validators=[DataRequired(), Length(max=64)], render_kw=_CODE_KW,
                       description="From your authenticator app, or one of your unused recovery codes.")


class RequirementForm(FlaskForm):
    require_staff = BooleanField("Require two-factor sign-in for stewards and admins",
                                 description="Staff who have not set it up are sent to the setup at their next "
                                             "page, and can use nothing else until they have.")
