"""uploads: shared_key, an image's copy for share links without its location and camera metadata

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 03:50:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("uploads", sa.Column("shared_key", sa.String(length=512), nullable=True))


def downgrade():
    # Plain DROP COLUMN (SQLite 3.35+): batch mode would rebuild the table on SQLite and lose its triggers.
    op.execute("ALTER TABLE uploads DROP COLUMN shared_key")
