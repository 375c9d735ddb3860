"""Satchel: accept files from people you do not trust."""

from pathlib import Path

from flask import Flask, request
from sqlalchemy.exc import SQLAlchemyError

from webapp import metrics
from webapp.config import load_config
from webapp.extensions import csrf, db, limiter, login_manager, migrate
from webapp.security import trust_proxies

ROOT = Path(__file__).resolve().parent.parent


def create_app(config=None):
    """Build the app: settings from the environment, overridden by config (a dict)."""
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(ROOT / "instance"),
    )
    settings = load_config((config or {}).get("ENV_NAME"))
    settings.update(config or {})
    app.config.update(settings)
    trust_proxies(app)
    register_logging(app)
    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    metrics.register(app)
    register_template_context(app)
    register_commands(app)
    return app


def register_logging(app):
    """Request ids, one log line per request, and the log format (see webapp/logs.py)."""
    from webapp import logs

    logs.configure(app)


def register_extensions(app):
    """Bind the unbound extension objects; sessions with lifetimes."""
    from webapp.auth import sessions
    from webapp.models import User

    db.init_app(app)

    @app.teardown_appcontext
    def remove_session(exc):
        # Runs before Flask-SQLAlchemy's own removal. When the database went away mid-request, the
        # rollback that closing the session does fails too: drop the dead connection instead, so the
        # response already made (a 503) is what the client gets.
        try:
            db.session.remove()
        except SQLAlchemyError:
            db.session.registry().invalidate()
            db.session.registry.clear()

    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message_category = "info"
    # Before CSRFProtect: request hooks run in the order they are added, and an expired session must
    # end, and a stranger to the API get its 401, before the CSRF check answers instead.
    sessions.register(app)
    csrf.init_app(app)

    @login_manager.user_loader
    def load_user(session_id):
        # "<user id>.<session version>": a logged-out (or banned) user's old cookies no longer match.
        user_id, _, version = session_id.partition(".")
        if not (user_id.isdigit() and version.isdigit() and len(user_id) < 10 and len(version) < 10):
            return None
        user = db.session.get(User, int(user_id))
        if user is None or not user.is_active or user.session_version != int(version):
            return None
        return user

    @login_manager.unauthorized_handler
    def unauthorized():
        from flask import redirect, url_for

        from webapp.errors import error_response, wants_json

        if wants_json():
            return error_response(401, "unauthorized", "Log in first.")
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def register_blueprints(app):
    """Mount auth, files, the JSON API, public shares, file requests, the admin area and the health probes."""
    from webapp.admin.views import bp as admin_bp
    from webapp.api.views import bp as api_bp
    from webapp.auth.views import bp as auth_bp
    from webapp.file_requests.views import bp as requests_bp
    from webapp.file_requests.views import public as requested_bp
    from webapp.files.views import bp as files_bp
    from webapp.health.views import bp as health_bp
    from webapp.settings.views import bp as settings_bp
    from webapp.shares.views import bp as shares_bp
    from webapp.storage_events.views import bp as storage_events_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(files_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(shares_bp)
    app.register_blueprint(requests_bp)
    app.register_blueprint(requested_bp)
    app.register_blueprint(settings_bp)
    app.register_blueprint(storage_events_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(health_bp)


def register_errorhandlers(app):
    """JSON errors under /api, pages elsewhere; security headers on every response."""
    from webapp.errors import register_errorhandlers as register
    from webapp.security import register_input_guards, register_security_headers

    register(app)
    register_security_headers(app)
    register_input_guards(app)


def register_template_context(app):
    """Values every template can use."""
    from webapp.templating import register

    register(app)


def register_commands(app):
    """`flask users ...`, `flask worker`, `flask storage ...`."""
    from webapp.cli import register

    register(app)
