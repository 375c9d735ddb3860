"""Deployment defaults fail closed: no environment means production, and production needs its settings."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import text

from tests.conftest import build_app, make_config
from webapp import config as settings
from webapp.auth.sessions import LOGIN_AT, SEEN_AT
from webapp.config import ConfigError, load_config
from webapp.extensions import db
from webapp.services.accounts import create_user

ROOT = Path(__file__).resolve().parent.parent
COMPLETE = {
    "SECRET_KEY": "k" * 64,
    "DATABASE_URL": "postgresql://x",
    "REDIS_URL": "redis://x",
    "S3_BUCKET": "b",
    "CLAMD_URL": "tcp://clamd:3310",
}
#: The key that signed every development session before keys were made per checkout.
OLD_PRINTED_KEY = "dev-only-secret-not-for-production"


def test_no_environment_means_production_and_refuses_to_start():
    with pytest.raises(ConfigError) as info:
        load_config(environ={})
    for name in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "S3_BUCKET", "CLAMD_URL"):
        assert name in str(info.value)


def test_the_wsgi_entry_point_refuses_to_start_without_settings(tmp_path):
    # As `gunicorn wsgi:app` would load it, with nothing but PATH in the environment.
    result = subprocess.run(
        [sys.executable, "-c", "import wsgi"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert result.returncode != 0
    assert "production needs these environment variables: SECRET_KEY" in result.stderr


def test_production_with_every_setting_starts_with_secure_cookies():
    config = load_config(environ=COMPLETE)
    assert config["ENV_NAME"] == "production"
    assert config["SECRET_KEY"] == COMPLETE["SECRET_KEY"]
    assert config["SESSION_COOKIE_SECURE"] is True and config["REMEMBER_COOKIE_SECURE"] is True


def test_only_the_tests_hash_passwords_with_less_work(app):
    for environ in (COMPLETE, {**COMPLETE, "PASSWORD_HASH_METHOD": "scrypt:16:1:1"}):
        assert load_config(environ=environ)["PASSWORD_HASH_METHOD"] == "scrypt"
    assert load_config("development", environ={})["PASSWORD_HASH_METHOD"] == "scrypt"
    with app.app_context():
        app.config["PASSWORD_HASH_METHOD"] = load_config(environ=COMPLETE)["PASSWORD_HASH_METHOD"]
        user = create_user("hash@example.com", "a long enough password")
        assert user.password_hash.startswith("scrypt:32768:8:1$")  # Werkzeug's default work factor
        assert user.check_password("a long enough password")


@pytest.mark.parametrize("key", ["s", OLD_PRINTED_KEY, "x" * 31])
def test_production_refuses_a_short_secret_key(key):
    with pytest.raises(ConfigError) as info:
        load_config(environ={**COMPLETE, "SECRET_KEY": key})
    assert "SECRET_KEY" in str(info.value)


def test_production_refuses_to_switch_scanning_off():
    with pytest.raises(ConfigError):
        load_config(environ={**COMPLETE, "SCANNER": "disabled"})


def test_unknown_environment_is_refused():
    with pytest.raises(ConfigError):
        load_config(environ={"SATCHEL_ENV": "prod"})


def test_development_key_is_random_per_checkout_and_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(settings, "INSTANCE", tmp_path / "instance")
    first = load_config("development", {})["SECRET_KEY"]
    assert first != OLD_PRINTED_KEY and len(first) >= 64
    assert load_config("development", {})["SECRET_KEY"] == first  # sessions survive a restart
    key_file = tmp_path / "instance" / "secret_key"
    assert key_file.stat().st_mode & 0o077 == 0  # readable by its owner only
    assert load_config("development", {"SECRET_KEY": "from-env"})["SECRET_KEY"] == "from-env"
    assert load_config("development", {})["SESSION_COOKIE_SECURE"] is False


def test_an_empty_key_file_is_replaced_not_used(tmp_path, monkeypatch):
    monkeypatch.setattr(settings, "INSTANCE", tmp_path)
    (tmp_path / "secret_key").write_text("")  # a crash while an older version wrote it
    key = load_config("development", {})["SECRET_KEY"]
    assert len(key) == 64 and (tmp_path / "secret_key").read_text() == key
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]


def test_testing_keys_differ_per_process():
    assert load_config("testing", {})["SECRET_KEY"] != load_config("testing", {})["SECRET_KEY"]


def test_a_cookie_signed_with_the_old_printed_key_is_not_a_session(app, user):
    # The attack: forge Flask's session cookie for user 1 with the key that used to be in the code.
    forged = URLSafeTimedSerializer(
        OLD_PRINTED_KEY, salt="cookie-session", signer_kwargs={"key_derivation": "hmac", "digest_method": "sha1"}
    ).dumps(
        {
            "_user_id": f"{user.id}.{user.session_version}",
            "_fresh": True,
            LOGIN_AT: int(time.time()),
            SEEN_AT: int(time.time()),
        }
    )
    client = app.test_client()
    client.set_cookie("session", forged)
    response = client.get("/files")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    # Control: the forgery is a valid session wherever that key still signs them.
    key, app.secret_key = app.secret_key, OLD_PRINTED_KEY
    try:
        assert client.get("/files").status_code == 200
    finally:
        app.secret_key = key


def test_allowed_types_from_environment():
    config = load_config("development", {"ALLOWED_TYPES": "image/png, application/pdf"})
    assert config["ALLOWED_TYPES"] == {"image/png": "png", "application/pdf": "pdf"}


def test_url_lifetimes_have_a_ceiling():
    with pytest.raises(ConfigError):
        load_config("development", {"UPLOAD_URL_TTL": "901"})
    with pytest.raises(ConfigError):
        load_config("development", {"DOWNLOAD_URL_TTL": "301"})
    assert load_config("development", {"UPLOAD_URL_TTL": "900"})["UPLOAD_URL_TTL"] == 900


def test_sqlite_runs_in_write_ahead_log_mode(services, tmp_path):
    app = build_app(make_config(services, SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'dev.db'}"))
    with app.app_context():
        assert db.session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert db.session.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
        db.engine.dispose()
