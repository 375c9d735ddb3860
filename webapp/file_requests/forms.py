"""The forms of file requests: the owner's new request, a sender's password and report."""

from flask_wtf import FlaskForm
from wtforms import IntegerField, PasswordField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from webapp.services.file_requests import MAX_DAYS, MAX_FILES, MAX_MESSAGE, MAX_TITLE


class RequestForm(FlaskForm):
    title = StringField("Title", validators=[DataRequired(), Length(max=MAX_TITLE)])
    message = TextAreaField("Message to the sender (optional)", validators=[Optional(), Length(max=MAX_MESSAGE)])
    days = IntegerField("Open for (days)", default=7, validators=[DataRequired(), NumberRange(min=1, max=MAX_DAYS)])
    max_file_mb = IntegerField("Largest file (MiB)", default=100, validators=[DataRequired(), NumberRange(min=1)])
    max_files = IntegerField(
        "Files at most", default=10, validators=[DataRequired(), NumberRange(min=1, max=MAX_FILES)]
    )
    password = PasswordField("Password (optional)", validators=[Optional(), Length(min=4, max=200)])
