"""The forms on the settings pages."""

from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, SelectMultipleField, StringField, widgets
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, ValidationError

from webapp.models.api_token import SCOPES
from webapp.models.webhook import EVENTS

TOKEN_DURATIONS = [
    SelectChoice("30", "30 days"),
    SelectChoice("90", "90 days"),
    SelectChoice("365", "1 year"),
    SelectChoice("", "never expires"),
]


def _chosen(field):
    # Not DataRequired: it would mark each checkbox required, and a browser would then ask for all of them.
    if not field.data:
        raise ValidationError("Choose at least one.")


class TokenForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=100)])
    scopes = SelectMultipleField(
        "Scopes",
        choices=[SelectChoice(scope, scope) for scope in SCOPES],
        default=["upload", "read"],
        widget=widgets.ListWidget(prefix_label=False),
        option_widget=widgets.CheckboxInput(),
        validators=[lambda form, field: _chosen(field)],
    )
    days = SelectField("Expires after", choices=TOKEN_DURATIONS, default="90")


class WebhookForm(FlaskForm):
    url = StringField("Endpoint URL (https://)", validators=[DataRequired(), Length(max=2048)])
    events = SelectMultipleField(
        "Events",
        choices=[SelectChoice(name, name) for name in EVENTS],
        default=["upload.available", "upload.rejected", "upload.quarantined"],
        widget=widgets.ListWidget(prefix_label=False),
        option_widget=widgets.CheckboxInput(),
        validators=[lambda form, field: _chosen(field)],
    )
    #: for admins only (the service refuses them to anyone else)
    all_users = BooleanField("Every user's events (admin)")
    allow_private = BooleanField("Allow private, loopback and link-local addresses (admin)")
