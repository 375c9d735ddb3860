"""JSON API used by the upload widget and other clients."""
from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api")

from webapp.api import views  # noqa: E402,F401
