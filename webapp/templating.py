"""Jinja filters and globals."""
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


def register(app):
    """Install filters and globals on app."""
    app.jinja_env.filters["filesize"] = filesize

    @app.context_processor
    def globals_():
        return {
            "scanning_disabled": app.config["SCANNER"] != "clamd",
            "reason_text": reason_text,
            "registration_open": registration_open(),
        }
