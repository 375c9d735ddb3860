"""All models, imported here so Alembic sees the whole schema."""
from webapp.models.maintenance import MaintenanceRun
from webapp.models.moderation import AuditEvent, BlockedHash, Report, Share
from webapp.models.scanner import ScannerCheck
from webapp.models.upload import Upload, UploadStatus
from webapp.models.user import User

__all__ = ["AuditEvent", "BlockedHash", "MaintenanceRun", "Report", "ScannerCheck", "Share", "Upload",
           "UploadStatus", "User"]
