"""file_requests and request_reports; uploads: file_request_id, request_sender

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 14:00:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "file_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("message", sa.String(length=2000), nullable=True),
        sa.Column("max_file_bytes", sa.BigInteger(), nullable=False),
        sa.Column("max_files", sa.Integer(), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["closed_by"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token"),
    )
    op.create_index("ix_file_requests_user_id", "file_requests", ["user_id"])
    op.create_table(
        "request_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_request_id", sa.Integer(), nullable=False),
        sa.Column("reporter_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["file_request_id"], ["file_requests.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["reporter_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_request_reports_file_request_id", "request_reports", ["file_request_id"])
    # Plain ADD COLUMN (not batch mode, which on SQLite would rebuild uploads without its usage triggers).
    if op.get_bind().dialect.name == "sqlite":
        # SQLite adds a column with its reference in one statement (Alembic would add the constraint apart,
        # which SQLite cannot do). SQLAlchemy reads such an inline reference back without its ON DELETE:
        # test_migrations allows for that.
        op.execute(
            "ALTER TABLE uploads ADD COLUMN file_request_id INTEGER REFERENCES file_requests (id) ON DELETE SET NULL"
        )
    else:
        op.add_column("uploads", sa.Column("file_request_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            "fk_uploads_file_request_id_file_requests",
            "uploads",
            "file_requests",
            ["file_request_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.add_column("uploads", sa.Column("request_sender", sa.String(length=64), nullable=True))
    op.create_index("ix_uploads_file_request_id", "uploads", ["file_request_id"])


def downgrade():
    op.drop_index("ix_uploads_file_request_id", table_name="uploads")
    op.execute("ALTER TABLE uploads DROP COLUMN request_sender")  # not batch mode: see 0009
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint("fk_uploads_file_request_id_file_requests", "uploads", type_="foreignkey")
    op.execute("ALTER TABLE uploads DROP COLUMN file_request_id")
    op.drop_index("ix_request_reports_file_request_id", table_name="request_reports")
    op.drop_table("request_reports")
    op.drop_index("ix_file_requests_user_id", table_name="file_requests")
    op.drop_table("file_requests")
