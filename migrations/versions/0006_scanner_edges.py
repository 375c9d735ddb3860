"""scanner edges: uploads accepted unscanned, scanner checks, audit log refuses TRUNCATE

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 04:30:00

"""

from alembic import op
import sqlalchemy as sa

# The trigger the model creates, so the two cannot drift apart.
from webapp.models.audit import NO_TRUNCATE


# revision identifiers, used by Alembic.
revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unscanned", sa.Boolean(), server_default=sa.false(), nullable=False))

    op.create_table(
        "scanner_checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("max_bytes", sa.BigInteger(), nullable=False),
        sa.Column("reply", sa.String(length=255), nullable=True),
        sa.Column("version", sa.String(length=255), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scanner_checks")),
    )
    with op.batch_alter_table("scanner_checks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_scanner_checks_checked_at"), ["checked_at"], unique=False)

    for statement in NO_TRUNCATE.get(op.get_bind().dialect.name, []):
        op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_events_no_truncate ON audit_events")
    with op.batch_alter_table("scanner_checks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scanner_checks_checked_at"))
    op.drop_table("scanner_checks")
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.drop_column("unscanned")
