"""shares: an optional password, an optional download limit, and a download count

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 03:45:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("shares", sa.Column("password_hash", sa.String(length=255), nullable=True))
    op.add_column("shares", sa.Column("max_downloads", sa.Integer(), nullable=True))
    op.add_column("shares", sa.Column("downloads", sa.Integer(), server_default="0", nullable=False))


def downgrade():
    # Plain DROP COLUMN (SQLite 3.35+): batch mode would rebuild the table on SQLite.
    for column in ("downloads", "max_downloads", "password_hash"):
        op.execute(f"ALTER TABLE shares DROP COLUMN {column}")
