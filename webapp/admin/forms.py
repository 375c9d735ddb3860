"""Admin action forms: every action carries a reason for the audit log."""
from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Optional


class ReasonForm(FlaskForm):
    reason = StringField("Reason", validators=[DataRequired(), Length(min=3, max=1000)])
    back = HiddenField()


class QuotaForm(ReasonForm):
    quota_mb = IntegerField("Quota (MB, empty for the default)",
                            validators=[Optional(), NumberRange(min=0, max=1024 * 1024 * 1024)])
