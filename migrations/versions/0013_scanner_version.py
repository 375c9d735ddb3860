"""uploads: scanner_version, the engine and signature database that gave the verdict

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 03:55:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("uploads", sa.Column("scanner_version", sa.String(length=255), nullable=True))


def downgrade():
    op.execute("ALTER TABLE uploads DROP COLUMN scanner_version")  # not batch mode: see 0009
