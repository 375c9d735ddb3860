"""uploads: indexes for the listing's sorts by name and size, and a trigram index for name search
(PostgreSQL, pg_trgm)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 03:40:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_uploads_user_name", "uploads", ["user_id", sa.text("lower(filename)"), "id"])
    op.create_index("ix_uploads_user_size", "uploads", ["user_id", "size", "id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute("CREATE INDEX ix_uploads_filename_trgm ON uploads USING gin (lower(filename) gin_trgm_ops)")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_uploads_filename_trgm", table_name="uploads")
    op.drop_index("ix_uploads_user_size", table_name="uploads")
    op.drop_index("ix_uploads_user_name", table_name="uploads")
