"""Public share pages: /s/<token>."""
from flask import Blueprint

bp = Blueprint("shares", __name__, url_prefix="/s")

from webapp.shares import views  # noqa: E402,F401
