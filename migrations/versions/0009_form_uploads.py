"""uploads: via_form marks an upload sent by a plain HTML form (presigned POST), whose name, size and
type are learnt from storage once the bytes arrive

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 02:40:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    # A plain ADD COLUMN, not batch mode: on SQLite that would rebuild the table and lose its usage triggers.
    op.add_column("uploads", sa.Column("via_form", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade():
    # A plain DROP COLUMN (SQLite 3.35+ has it): batch mode would rebuild the table on SQLite and lose
    # its usage triggers.
    op.execute("ALTER TABLE uploads DROP COLUMN via_form")
