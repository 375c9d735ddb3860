"""All models, imported here so Alembic sees the whole schema."""
from webapp.models.upload import Upload, UploadStatus
from webapp.models.user import User

__all__ = ["Upload", "UploadStatus", "User"]
