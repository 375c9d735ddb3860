"""Migrations are code: one head, they build the schema from nothing, and match the models."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from tests.conftest import build_app, make_config
from webapp.extensions import db


@pytest.fixture(params=["configured", "sqlite"])
def bare_app(request, services, tmp_path):
    """An app on an empty database (no create_all), cleaned afterwards: the configured one, and a
    SQLite file as `make run` uses (so a PostgreSQL run checks SQLite's migrations too)."""
    changes = (
        {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'migrations.db'}"} if request.param == "sqlite" else {}
    )
    app = build_app(make_config(services, **changes))
    with app.app_context():
        db.drop_all()
        with db.engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        yield app
        db.session.remove()
        db.drop_all()
        with db.engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        db.engine.dispose()


def usage_triggers():
    """How many of the usage counters' triggers the database holds."""
    query = {
        "postgresql": "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'uploads_usage%'",
        "sqlite": "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'uploads_usage%'",
    }[db.engine.dialect.name]
    with db.engine.connect() as conn:
        return conn.execute(text(query)).scalar()


def without_inline_reference_options(drift):
    """drift less the pairs that only say a foreign key's ON DELETE differs, for keys SQLite holds inline
    in a column added by ALTER TABLE (0014): SQLAlchemy reflects those without their options, though
    SQLite keeps and enforces them (PRAGMA foreign_key_list shows them)."""
    if db.engine.dialect.name != "sqlite":
        return drift

    def shape(fk):
        return fk.table.name, tuple(c.name for c in fk.columns), tuple(e.target_fullname for e in fk.elements)

    removed = {shape(d[1]) for d in drift if d[0] == "remove_fk" and d[1].ondelete is None}
    added = {shape(d[1]) for d in drift if d[0] == "add_fk"}
    same = removed & added
    with db.engine.connect() as conn:
        for table, columns, _ in same:
            options = {row[3]: row[6] for row in conn.execute(text(f"PRAGMA foreign_key_list({table})"))}
            assert all(options[column] != "NO ACTION" for column in columns), options  # SQLite has the option
    return [d for d in drift if not (d[0] in ("remove_fk", "add_fk") and shape(d[1]) in same)]


def test_single_head(bare_app):
    script = ScriptDirectory.from_config(bare_app.extensions["migrate"].migrate.get_config())
    assert len(script.get_heads()) == 1


# SQLite's reflection cannot read expression indexes (the listing's lower(filename)); PostgreSQL's can,
# and there the comparison covers them.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index")
def test_upgrade_from_empty_matches_models_and_downgrades(bare_app):
    upgrade()
    tables = set(inspect(db.engine).get_table_names())
    assert {"users", "uploads", "alembic_version"} <= tables
    assert usage_triggers() == (2 if db.engine.dialect.name == "postgresql" else 3)  # no later migration lost them
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        drift = compare_metadata(context, db.metadata)
    assert without_inline_reference_options(drift) == []
    downgrade(revision="base")
    assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}


def test_the_usage_migration_counts_what_users_already_hold(bare_app):
    upgrade(revision="0006")
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (id, email, password_hash, is_admin, is_banned, created_at) "
                "VALUES (7, 'a@x', 'h', false, false, '2026-01-01 00:00:00+00:00')"
            )
        )
        for n, (status, size) in enumerate(
            [
                ("available", 100),
                ("quarantined", 20),
                ("pending", 3),
                ("scanning", 4),
                ("rejected", 1000),
                ("deleted", 9),
            ]
        ):
            conn.execute(
                text(
                    "INSERT INTO uploads (id, user_id, filename, size, declared_type, status, incoming_key, "
                    "created_at, updated_at, expires_at) "
                    "VALUES (:id, 7, 'f', :size, 'text/plain', :status, 'k', :now, :now, :now)"
                ),
                {"id": f"u{n}", "size": size, "status": status, "now": "2026-01-01 00:00:00+00:00"},
            )
    upgrade()
    with db.engine.begin() as conn:
        counters = conn.execute(text("SELECT bytes_held, bytes_reserved, pending_uploads FROM users")).one()
        assert tuple(counters) == (120, 7, 1)
        # From here the triggers keep them.
        conn.execute(text("UPDATE uploads SET status = 'deleted' WHERE id = 'u0'"))
        counters = conn.execute(text("SELECT bytes_held, bytes_reserved, pending_uploads FROM users")).one()
        assert tuple(counters) == (20, 7, 1)
