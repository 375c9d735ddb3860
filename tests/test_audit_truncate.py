"""PostgreSQL refuses TRUNCATE on the audit log, in the schema create_all makes and in the one the migrations make.

Row triggers do not fire on TRUNCATE, so without a statement trigger of its own the log could be emptied in one
statement that the UPDATE/DELETE triggers never see. SQLite has no TRUNCATE.
"""

import pytest
from flask_migrate import upgrade
from sqlalchemy import func, select, text
from sqlalchemy.exc import DatabaseError

from tests.test_migrations import bare_app  # noqa: F401 (a fixture: an app on an empty database)
from webapp.extensions import db
from webapp.models import AuditEvent
from webapp.services import audit

pytestmark = pytest.mark.postgresql  # SQLite has no TRUNCATE


def assert_truncate_refused():
    audit.record("login_failed", None, "user", "someone@example.com", ip="192.0.2.1")
    db.session.commit()
    for statement in ("TRUNCATE audit_events", "TRUNCATE audit_events CASCADE", "TRUNCATE TABLE ONLY audit_events"):
        with pytest.raises(DatabaseError, match="append-only"):
            with db.engine.begin() as conn:
                conn.execute(text(statement))
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == 1


def test_truncate_is_refused_in_the_create_all_schema(app):
    assert_truncate_refused()


@pytest.mark.parametrize("bare_app", ["configured"], indirect=True)  # the configured PostgreSQL only
def test_truncate_is_refused_in_the_migrated_schema(bare_app):  # noqa: F811
    upgrade()
    assert_truncate_refused()
