"""The forms on a share page: its password, and a report."""

from flask_wtf import FlaskForm
from wtforms import PasswordField, TextAreaField
from wtforms.validators import DataRequired, Length


class ReportForm(FlaskForm):
    reason = TextAreaField("What is wrong with this file?", validators=[DataRequired(), Length(min=3, max=1000)])


class UnlockForm(FlaskForm):
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])
