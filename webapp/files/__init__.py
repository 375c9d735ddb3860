"""The user's files: listing, details, download, delete."""
from flask import Blueprint

bp = Blueprint("files", __name__)

from webapp.files import views  # noqa: E402,F401
