"""Migrations are code: one head, they build the schema from nothing, and match the models."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from tests.conftest import build_app, make_config
from webapp.extensions import db


@pytest.fixture
def bare_app(services):
    """An app on an empty database (no create_all), cleaned afterwards."""
    app = build_app(make_config(services))
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


def test_single_head(bare_app):
    script = ScriptDirectory.from_config(bare_app.extensions["migrate"].migrate.get_config())
    assert len(script.get_heads()) == 1


def test_upgrade_from_empty_matches_models_and_downgrades(bare_app):
    upgrade()
    tables = set(inspect(db.engine).get_table_names())
    assert {"users", "uploads", "alembic_version"} <= tables
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        drift = compare_metadata(context, db.metadata)
    assert drift == []
    downgrade(revision="base")
    assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
