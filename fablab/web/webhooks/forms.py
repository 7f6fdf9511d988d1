from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget

from ...domain.webhook_body import EVENT_TYPES
from ...domain.webhook_urls import MAX_URL
from ..choices import options


class CheckboxList(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class WebhookForm(FlaskForm):
    url = StringField("URL", validators=[DataRequired(), Length(max=MAX_URL)],
                      description="http:// or https://. Addresses on the lab's network (e.g. Home Assistant) "
                                  "are fine; link-local and cloud metadata addresses are refused.")
    description = StringField("Description", validators=[Length(max=200)],
                              description="What receives it, e.g. “door display” or “chat bot”.")
    events = CheckboxList("Events", choices=options((t, t) for t in EVENT_TYPES),
                          description="Which events are sent to this URL.")


class ActionForm(FlaskForm):
    """The CSRF token of the one-button forms (rotate, ping, enable, disable, delete, redeliver)."""
