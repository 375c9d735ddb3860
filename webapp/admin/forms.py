"""Admin action forms: every action on an account or a file carries a reason for the audit log."""

from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, IntegerField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, Length, NumberRange, Optional


class ReasonForm(FlaskForm):
    reason = StringField("Reason", validators=[DataRequired(), Length(min=3, max=1000)])
    back = HiddenField()


class QuotaForm(ReasonForm):
    quota_mb = IntegerField(
        "Quota (MB, empty for the default)", validators=[Optional(), NumberRange(min=0, max=1024 * 1024 * 1024)]
    )


class CreateUserForm(FlaskForm):
    email = EmailField(
        "Email",
        filters=[lambda value: value.strip() if value else value],
        validators=[DataRequired(), Email(check_deliverability=False), Length(max=254)],
    )
    password = PasswordField(
        "Initial password (empty: generate one)",
        validators=[Optional(), Length(min=10, max=1024, message="Use at least 10 characters (at most 1024).")],
    )
