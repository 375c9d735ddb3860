"""Extension objects, created unbound; create_app binds them to an app."""

import sqlite3

from flask import current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, current_user
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine

# Stable constraint names keep Alembic migrations identical on SQLite and PostgreSQL.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

db = SQLAlchemy(metadata=metadata)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address)


def per_user():
    return f"user:{current_user.get_id()}"


def per_user_and_file():
    """The rate-limit key of one user's calls on one file (downloads, by page or API)."""
    return f"user:{current_user.get_id()}:{request.view_args.get('upload_id', '')[:32]}"


#: The per-user limit on starting uploads (PRESIGN_LIMIT), shared by the API and the upload form.
presign_limit = limiter.shared_limit(lambda: current_app.config["PRESIGN_LIMIT"], scope="presign", key_func=per_user)


@event.listens_for(Engine, "connect")
def _sqlite_write_ahead_log(dbapi_connection, connection_record):
    """SQLite (development and the tests) in WAL mode: readers never wait for the writer, and a commit
    appends to the log instead of rewriting pages, without an fsync of each (synchronous=NORMAL)."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()
