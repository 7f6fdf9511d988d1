"""Design forms. Licences are plain selects that do not validate their choices here: the service checks
them (open licence, fork rules) and explains a refusal, which a generic 'Not a valid choice' would not."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import MultipleFileField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from ...domain.licences import Licence, open_licences
from ..choices import options


def licence_options(licences: list[Licence] | None = None) -> list:
    return options([(lic.spdx, f"{lic.spdx}: {lic.name}") for lic in (licences or open_licences())])


class CheckboxList(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class DesignForm(FlaskForm):
    title = StringField("Title", validators=[DataRequired(), Length(max=200)])
    description = TextAreaField("Description", validators=[Length(max=100_000)],
                                description="Markdown: what it is, how to make it, materials, settings.")
    licence = SelectField("Licence", validate_choice=False,
                          description="Designs here are commons: choose an open licence.")
    tags = StringField("Tags", validators=[Length(max=500)], description="Comma separated, e.g. bracket, pla, shelf.")
    machine_types = CheckboxList("For machines of type", validate_choice=False)
    files = MultipleFileField("Files", description="STL, 3MF, OBJ, STEP, SVG, DXF, G-code, PDF, images, README.")
    changelog = StringField("Note on this first version", validators=[Optional(), Length(max=2000)])


class VersionForm(FlaskForm):
    changelog = TextAreaField("What changed", validators=[DataRequired(), Length(max=20_000)])
    keep = CheckboxList("Keep these files from the current version", coerce=int, validate_choice=False)
    files = MultipleFileField("New or replaced files",
                              description="A new file with the same name as a kept one replaces it.")


class ForkForm(FlaskForm):
    title = StringField("Title of your fork", validators=[DataRequired(), Length(max=200)])
    licence = SelectField("Licence", validate_choice=False)
    description = TextAreaField("Description", validators=[Length(max=100_000)])
    tags = StringField("Tags", validators=[Length(max=500)])
    changelog = StringField("What you changed or plan to change", validators=[Optional(), Length(max=2000)])
    files = MultipleFileField("Changed or added files (optional)",
                              description="The parent version's files are carried over; same names are replaced.")


class MadeForm(FlaskForm):
    booking = SelectField("During my booking", coerce=int, validate_choice=False)
    note = StringField("Note (optional)", validators=[Optional(), Length(max=255)],
                       description="Material, settings, how it went.")
