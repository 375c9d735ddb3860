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
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("via_form", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade():
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.drop_column("via_form")
