"""Forms on the file pages."""

from flask_wtf import FlaskForm
from wtforms import IntegerField, PasswordField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, NumberRange, Optional

SHARE_DURATIONS = [
    SelectChoice("", "never expires"),
    SelectChoice("1", "1 day"),
    SelectChoice("7", "7 days"),
    SelectChoice("30", "30 days"),
    SelectChoice("365", "1 year"),
]


class ShareForm(FlaskForm):
    days = SelectField("Link expires", choices=SHARE_DURATIONS, default="7")
    password = PasswordField("Password (optional)", validators=[Optional(), Length(min=4, max=200)])
    max_downloads = IntegerField("Download limit (optional)", validators=[Optional(), NumberRange(min=1, max=100_000)])
