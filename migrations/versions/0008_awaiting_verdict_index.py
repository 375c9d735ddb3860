"""uploads: a partial index of each user's files waiting for a verdict (the scan queue's fair share)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 15:50:00

"""

from alembic import op
import sqlalchemy as sa

from webapp.models.upload import AWAITING_VERDICT_SQL


# revision identifiers, used by Alembic.
revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        "ix_uploads_awaiting_verdict_user",
        "uploads",
        ["user_id"],
        postgresql_where=sa.text(AWAITING_VERDICT_SQL),
        sqlite_where=sa.text(AWAITING_VERDICT_SQL),
    )


def downgrade():
    op.drop_index("ix_uploads_awaiting_verdict_user", table_name="uploads")
