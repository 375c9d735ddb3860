"""failed scans per upload

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 16:20:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scan_failures", sa.Integer(), server_default="0", nullable=False))


def downgrade():
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.drop_column("scan_failures")
