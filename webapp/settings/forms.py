"""The forms on the settings pages."""

from flask_wtf import FlaskForm
from wtforms import SelectField, SelectMultipleField, StringField, widgets
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, ValidationError

from webapp.models.api_token import SCOPES

TOKEN_DURATIONS = [
    SelectChoice("30", "30 days"),
    SelectChoice("90", "90 days"),
    SelectChoice("365", "1 year"),
    SelectChoice("", "never expires"),
]


def _chosen(field):
    # Not DataRequired: it would mark each checkbox required, and a browser would then ask for all three.
    if not field.data:
        raise ValidationError("Choose at least one scope.")


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
