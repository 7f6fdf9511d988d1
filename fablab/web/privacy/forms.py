from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length


class PasswordConfirmForm(FlaskForm):
    confirm = PasswordField("Your password", validators=[DataRequired(), Length(max=200)],
                            description="To be sure it is you.")


class EmailConfirmForm(FlaskForm):
    # Members who sign in only through the lab's single sign-on have no password here.
    confirm = StringField("Type your email address", validators=[DataRequired(), Length(max=254)],
                          description="You sign in through single sign-on, so your email confirms it is you.")


class MemberNoForm(FlaskForm):
    member_no = StringField("Type the member number to confirm", validators=[DataRequired(), Length(max=12)])


class PlainForm(FlaskForm):
    """Only the CSRF token (confirm, decline, withdraw)."""
