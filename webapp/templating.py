"""Jinja filters and globals."""

from flask_wtf.csrf import generate_csrf
from markupsafe import Markup, escape

from webapp.reasons import reason_text
from webapp.services.accounts import registration_open


def filesize(value):
    """Human-readable bytes: 1.5 MB."""
    value = float(value or 0)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


#: How much of a time each page shows (always UTC).
TIME_FORMATS = {"seconds": "%Y-%m-%d %H:%M:%S", "minutes": "%Y-%m-%d %H:%M", "date": "%Y-%m-%d", "time": "%H:%M:%S"}


def when(value, precision="seconds"):
    """A UTC time as pages show it: 2026-12-01 05:52:04 (or to the minute, the date, the time)."""
    return value.strftime(TIME_FORMATS[precision]) if value else ""


def csrf_input():
    """The hidden CSRF field for a hand-written form."""
    return Markup('<input type="hidden" name="csrf_token" value="{}">').format(escape(generate_csrf()))


def register(app):
    """Install filters and globals on app."""
    app.jinja_env.filters["filesize"] = filesize
    app.jinja_env.filters["when"] = when
    app.jinja_env.globals["csrf_input"] = csrf_input

    @app.context_processor
    def globals_():
        return {
            "scanning_disabled": app.config["SCANNER"] != "clamd",
            "reason_text": reason_text,
            "registration_open": registration_open(),
        }
