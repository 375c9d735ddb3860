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
    bind = op.get_bind()
    if bind.dialect.name == "postgresql" and _trigrams_available(bind):
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute("CREATE INDEX ix_uploads_filename_trgm ON uploads USING gin (lower(filename) gin_trgm_ops)")


def _trigrams_available(bind):
    """pg_trgm is installed, or this role may install it; otherwise name search runs without its index
    (a DBA can run CREATE EXTENSION pg_trgm and this migration again)."""
    installed = bind.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")).scalar()
    allowed = bind.execute(
        sa.text(
            "SELECT rolsuper OR has_database_privilege(current_database(), 'CREATE') FROM pg_roles"
            " WHERE rolname = current_user"
        )
    ).scalar()
    if not (installed or allowed):
        print("pg_trgm is not installed and this role cannot install it: name search runs without its index")
    return bool(installed or allowed)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_uploads_filename_trgm")
    op.drop_index("ix_uploads_user_size", table_name="uploads")
    op.drop_index("ix_uploads_user_name", table_name="uploads")
