"""usage counters: bytes held, bytes reserved and pending uploads per user, kept by triggers

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 09:10:00

"""

from alembic import op
import sqlalchemy as sa

# The triggers and status lists the model uses, so the two cannot drift apart.
from webapp.models.usage import HELD, RESERVED, USAGE_TRIGGERS
from webapp.models.upload import UploadStatus


# revision identifiers, used by Alembic.
revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COLUMNS = ("bytes_held", "bytes_reserved", "pending_uploads")


def _sum_of(statuses, value="size"):
    """A user's sum of value over uploads in statuses. Built from constants only."""
    names = ", ".join(f"'{status.value}'" for status in statuses)
    return f"(SELECT COALESCE(SUM({value}), 0) FROM uploads WHERE uploads.user_id = users.id AND status IN ({names}))"  # noqa: S608


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bytes_held", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("bytes_reserved", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("pending_uploads", sa.Integer(), server_default="0", nullable=False))
    # The counters start from what the uploads say, before the triggers keep them.
    op.execute(
        f"UPDATE users SET bytes_held = {_sum_of(HELD)}, bytes_reserved = {_sum_of(RESERVED)}, "  # noqa: S608
        f"pending_uploads = {_sum_of([UploadStatus.PENDING], value='1')}"
    )
    for statement in USAGE_TRIGGERS.get(op.get_bind().dialect.name, []):
        op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER uploads_usage_insert_delete ON uploads")
        op.execute("DROP TRIGGER uploads_usage_update ON uploads")
        op.execute("DROP FUNCTION uploads_usage()")
    else:
        for name in ("uploads_usage_insert", "uploads_usage_delete", "uploads_usage_update"):
            op.execute(f"DROP TRIGGER {name}")
    with op.batch_alter_table("users", schema=None) as batch_op:
        for column in reversed(COLUMNS):
            batch_op.drop_column(column)
