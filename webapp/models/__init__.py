"""All models, imported here so Alembic sees the whole schema."""
from webapp.models.moderation import AuditEvent, BlockedHash, Report, Share
from webapp.models.upload import Upload, UploadStatus
from webapp.models.user import User

__all__ = ["AuditEvent", "BlockedHash", "Report", "Share", "Upload", "UploadStatus", "User"]
