"""Forms on the file pages."""

from flask_wtf import FlaskForm
from wtforms import SelectField
from wtforms.fields.choices import SelectChoice

SHARE_DURATIONS = [
    SelectChoice("", "never expires"),
    SelectChoice("1", "1 day"),
    SelectChoice("7", "7 days"),
    SelectChoice("30", "30 days"),
    SelectChoice("365", "1 year"),
]


class ShareForm(FlaskForm):
    days = SelectField("Link expires", choices=SHARE_DURATIONS, default="7")
