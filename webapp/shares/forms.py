"""The report form on a share page."""

from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import DataRequired, Length


class ReportForm(FlaskForm):
    reason = TextAreaField("What is wrong with this file?", validators=[DataRequired(), Length(min=3, max=1000)])
